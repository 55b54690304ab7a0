//! Dynamic nodes' children in the tree: added one by one to the dynamic
//! node's one-for-one group, and removed with their subtree, keeping no
//! record, once they have ended for good.

use std::sync::Arc;

use super::{member_token, GroupRecord, Node, NodeKey, Tree};
use crate::model::error::RunError;
use crate::model::name::is_valid_name;
use crate::model::policy::{AutoShutdown, GroupOptions, Strategy};
use crate::model::records::NodeKind;

impl Tree {
    /// Whether `k` is a dynamic node.
    pub fn is_dynamic(&self, k: NodeKey) -> bool {
        self.nodes
            .get(k)
            .is_some_and(|n| n.kind == NodeKind::Dynamic)
    }

    /// How many children the dynamic node `k` may have at once.
    pub fn max_children_of(&self, k: NodeKey) -> Option<usize> {
        self.spec_of(k).and_then(|s| s.max_children)
    }

    /// Queues `k` for the sweep (and the dynamic node's removal check).
    pub fn mark_dirty(&mut self, k: NodeKey) {
        self.dirty.push(k);
    }

    /// Adds a NEW child named `name` to the dynamic node `parent`, in its one
    /// one-for-one group (made on the first child). The caller has checked
    /// that `parent` is dynamic and live.
    pub fn add_dynamic_child(&mut self, parent: NodeKey, name: &str) -> Result<NodeKey, RunError> {
        let p = &self.nodes[parent];
        let err = || (p.dn.to_string(), name.to_string());
        if !is_valid_name(name) {
            let (dn, name) = err();
            return Err(RunError::InvalidName { dn, name });
        }
        if p.children.contains_key(name) {
            let (dn, name) = err();
            return Err(RunError::DuplicateName { dn, name });
        }
        // The dynamic node's auto-shutdown is its children's group's.
        let auto_shutdown = self
            .spec_of(parent)
            .map_or(AutoShutdown::Never, |s| s.auto_shutdown);
        let options = GroupOptions {
            strategy: Strategy::OneForOne,
            auto_shutdown,
            ..GroupOptions::default()
        };
        let group = match p.groups.first() {
            Some(&g) => g,
            None => {
                let g = self.groups.insert(GroupRecord {
                    owner: Some(parent),
                    members: Vec::new(),
                    options,
                    unready: 0,
                    stopping: Vec::new(),
                    token: None,
                });
                self.nodes[parent].groups.push(g);
                g
            }
        };
        let p = &self.nodes[parent];
        let dn: Arc<str> = format!("{}.{}", p.dn, name).into();
        let token = member_token(&p.token, options);
        let incarnation = self.take_incarnation();
        let node = Node::new(dn, Some(parent), group, token, incarnation);
        self.tally.add(&node);
        let k = self.nodes.insert(node);
        self.nodes[parent].children.insert(name.into(), k);
        let g = &mut self.groups[group];
        g.members.push(k);
        g.unready += 1;
        self.adjust_live(parent, 1);
        Ok(k)
    }

    /// Removes `k` (a dynamic node's child whose subtree has exited) and its
    /// subtree, keeping no record of them. Returns the removed keys, `k`
    /// last, so that their hosts can be dropped.
    pub fn remove_subtree(&mut self, k: NodeKey) -> Vec<NodeKey> {
        let Some(node) = self.nodes.get(k) else {
            return Vec::new();
        };
        debug_assert!(node.is_ready(), "removal of a live subtree");
        let (parent, group, dn) = (node.parent, node.group, node.dn.clone());
        let mut removed = Vec::new();
        let mut stack = vec![k];
        while let Some(c) = stack.pop() {
            let Some(n) = self.nodes.remove(c) else {
                continue;
            };
            self.tally.remove(&n);
            stack.extend(n.children.values().copied());
            for g in n.groups {
                self.groups.remove(g);
            }
            removed.push(c);
        }
        removed.reverse();
        if let Some(g) = self.groups.get_mut(group) {
            if let Some(i) = g.members.iter().position(|m| *m == k) {
                g.members.swap_remove(i);
            }
        }
        if let Some(p) = parent.and_then(|p| self.nodes.get_mut(p)) {
            // By name: a dynamic node may have many children.
            let name = &dn[dn.rfind('.').map_or(0, |i| i + 1)..];
            if p.children.get(name) == Some(&k) {
                p.children.remove(name);
            }
        }
        removed
    }
}
