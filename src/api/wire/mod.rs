//! How the handles reach the processor without naming it: the requests
//! ([`protocol`]), the reports that bypass its mailbox ([`inbox`]), and the
//! guards that say when the tree has settled ([`settle`]).

pub(crate) mod inbox;
pub(crate) mod protocol;
pub(crate) mod settle;
