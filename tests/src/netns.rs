//! Network namespaces for partition tests, made so that nothing in the
//! root namespace changes (no interface, no sysctl, no forwarding): a hub
//! namespace holds a bridge, and every node group lives in a namespace of
//! its own, attached to the bridge by a veth pair whose hub end is the
//! group's switch port. A partition is that port going down (packets are
//! dropped silently, no reset, as in a real partition); healing is the
//! port going up again.
//!
//! All groups share one /24 that exists only on the hub's bridge, so two
//! hubs (two tests at once) never see each other. [`Hub`] owns every
//! namespace it made and deletes them when dropped, even when a test
//! fails; drop the processes running inside first (declare the hub before
//! the cluster).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Hubs made by this process so far, so that two tests of one binary get
/// distinct namespace names.
static HUBS: AtomicU32 = AtomicU32::new(0);

/// The subnet of every hub's bridge (group `i` is `.{i + 1}`).
const SUBNET: &str = "10.233.0";

/// One node group: a namespace attached to the hub's bridge.
#[derive(Debug)]
struct Group {
    /// The group's name in the test (`m`, `p`, ...).
    name: String,
    /// Its namespace.
    ns: String,
    /// Its address on the bridge.
    ip: String,
    /// The hub end of its veth pair (the bridge port a partition takes
    /// down).
    port: String,
}

/// A hub namespace with a bridge and one namespace per group; every
/// namespace is deleted when the hub is dropped.
#[derive(Debug)]
pub struct Hub {
    /// The hub namespace (the bridge and the groups' ports live here).
    hub: String,
    /// The groups, in the order given to [`Hub::create`].
    groups: Vec<Group>,
}

/// Runs `ip ARGS`; the error says which command failed and why.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hub {
    /// Creates the hub and one namespace per group name (short lowercase
    /// names: they go into interface names). `Err` says why the machine
    /// refused; whatever was made is removed again.
    pub fn create(groups: &[&str]) -> Result<Hub, String> {
        let k = HUBS.fetch_add(1, Ordering::Relaxed);
        let base = format!("sp{}x{k}", std::process::id());
        let mut hub = Hub {
            hub: format!("{base}hub"),
            groups: Vec::new(),
        };
        ip(&["netns", "add", &hub.hub])?;
        ip(&["-n", &hub.hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub.hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub.hub, "link", "set", "lo", "up"])?;
        for (i, name) in groups.iter().enumerate() {
            let g = Group {
                name: (*name).to_owned(),
                ns: format!("{base}{name}"),
                ip: format!("{SUBNET}.{}", i + 1),
                port: format!("port-{name}"),
            };
            ip(&["netns", "add", &g.ns])?;
            // Pushed before its links exist, so a failure below still
            // deletes the namespace.
            hub.groups.push(g);
            let g = hub.groups.last().expect("just pushed");
            ip(&[
                "-n", &hub.hub, "link", "add", &g.port, "type", "veth", "peer", "name", "eth0",
                "netns", &g.ns,
            ])?;
            ip(&["-n", &hub.hub, "link", "set", &g.port, "master", "br0"])?;
            ip(&["-n", &hub.hub, "link", "set", &g.port, "up"])?;
            ip(&[
                "-n",
                &g.ns,
                "addr",
                "add",
                &format!("{}/24", g.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &g.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &g.ns, "link", "set", "lo", "up"])?;
        }
        Ok(hub)
    }

    fn group(&self, name: &str) -> &Group {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no group {name} in the hub"))
    }

    /// The address of group `name` on the bridge.
    pub fn ip(&self, name: &str) -> String {
        self.group(name).ip.clone()
    }

    /// The namespace of group `name`.
    pub fn ns(&self, name: &str) -> String {
        self.group(name).ns.clone()
    }

    /// The command prefix that runs a program inside group `name`
    /// (`ip netns exec NS`; `ip` execs the program, so its pid is the
    /// program's and signals reach it).
    pub fn wrapper(&self, name: &str) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.group(name).ns.clone(),
        ]
    }

    /// Cuts group `name` off from every other group: its bridge port goes
    /// down (both ends lose carrier; packets are dropped, nobody gets a
    /// reset).
    pub fn cut(&self, name: &str) -> Result<(), String> {
        let g = self.group(name);
        ip(&["-n", &self.hub, "link", "set", &g.port, "down"])
    }

    /// Attaches group `name` again.
    pub fn heal(&self, name: &str) -> Result<(), String> {
        let g = self.group(name);
        ip(&["-n", &self.hub, "link", "set", &g.port, "up"])
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so the
        // pair; the bridge goes with the hub namespace.
        for g in &self.groups {
            let _ = ip(&["netns", "del", &g.ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
    }
}

/// A hub for `test`, or `None` when the machine refuses network namespaces
/// outside CI: the refusal is printed as `SKIPPED <test>: <why>` so that it
/// shows in the test output. Under CI (the `CI` variable set) a refusal is
/// an error: CI must run the partitions.
pub fn hub_or_skip(test: &str, groups: &[&str]) -> Result<Option<Hub>, String> {
    match Hub::create(groups) {
        Ok(h) => Ok(Some(h)),
        Err(why) if std::env::var_os("CI").is_some() => Err(format!(
            "{test}: network namespaces are refused under CI ({why}); CI must run the partition tests as root"
        )),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            Ok(None)
        }
    }
}
