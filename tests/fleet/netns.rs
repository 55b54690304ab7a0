//! A network namespace joined to this host by a veth pair: a replica run
//! inside it reaches the store at [`Netns::host_ip`], and [`Netns::cut`]
//! partitions it (the host's end goes down; packets vanish, nothing is
//! reset). Removed when dropped. Needs root and `ip` (iproute2).

use std::process::Command;

pub struct Netns {
    pub name: String,
    host_veth: String,
    pub host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// A namespace and its link; `Err` where this machine cannot make one
    /// (not root, no `ip`).
    pub fn new() -> Result<Netns, String> {
        let n = std::process::id() % 200 + 20;
        let name = format!("asv-fleet-{}", std::process::id());
        let (host_veth, ns_veth) = (format!("asvh{n}"), format!("asvn{n}"));
        let (host_ip, ns_ip) = (format!("10.231.{n}.1"), format!("10.231.{n}.2"));
        // Leftovers of a run killed before it could clean up.
        let _ = ip(&["netns", "del", &name]);
        let _ = ip(&["link", "del", &host_veth]);
        ip(&["netns", "add", &name])?;
        let made = Netns {
            name: name.clone(),
            host_veth: host_veth.clone(),
            host_ip: host_ip.clone(),
        };
        ip(&[
            "link", "add", &host_veth, "type", "veth", "peer", "name", &ns_veth,
        ])?;
        ip(&["link", "set", &ns_veth, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_veth])?;
        ip(&["link", "set", &host_veth, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{ns_ip}/24"), "dev", &ns_veth])?;
        inside(&["link", "set", &ns_veth, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(made)
    }

    /// Partitions the namespace from the host.
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_veth, "down"]).expect("cut the link");
    }

    /// Heals the partition.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_veth, "up"]).expect("heal the link");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_veth]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
