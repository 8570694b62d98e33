//! The JSON of `poolctl tree ls` and `tree show` read loosely, as the
//! contract of DESIGN.md "Interfaces" states it (statuses `running`,
//! `pending`, `failed`, `stopped`, `restarting`; a `reason` on pending and
//! failed entries), rather than through pool-proto's enums: a test must be
//! able to read a status that today's binaries do not print yet, and say
//! what it saw instead of failing to parse.

use pool_proto::Pid;
use serde::Deserialize;

/// One line of `poolctl --json tree ls`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AppLine {
    /// The application id.
    pub id: String,
    /// The root supervisor's pid, while it runs.
    #[serde(default)]
    pub root: Option<Pid>,
    /// The node of the root, while it runs.
    #[serde(default)]
    pub node: Option<String>,
    /// `running`, `pending`, `failed` or `stopped`.
    pub status: String,
    /// Why it is pending or failed.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `poolctl --json tree show ID`, and each of its children (a nested
/// supervisor has the same shape, a worker child has no `children`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Entry {
    /// The child's (or application's) id.
    pub id: String,
    /// The running process, if any.
    #[serde(default)]
    pub pid: Option<Pid>,
    /// Its node, if it runs.
    #[serde(default)]
    pub node: Option<String>,
    /// Restarts of this child; of a supervisor, all restarts it made.
    #[serde(default)]
    pub restarts: u64,
    /// `running`, `restarting`, `pending`, `stopped` (children); the app's
    /// status at the top.
    pub status: String,
    /// Why it is pending (or, at the top, failed).
    #[serde(default)]
    pub reason: Option<String>,
    /// A supervisor's children, in start order.
    #[serde(default)]
    pub children: Option<Vec<Entry>>,
}

impl Entry {
    /// Every entry with its path (`app`, `app/sup`, `app/sup/child`),
    /// parents before their children, in start order.
    ///
    /// ```
    /// use pool_cluster_tests::views::Entry;
    /// let view: Entry = serde_json::from_str(r#"{"id": "app", "status": "running", "restarts": 0,
    ///     "children": [{"id": "sup", "status": "running", "restarts": 1,
    ///         "children": [{"id": "c", "status": "pending", "reason": "no live node has label zone=z2"}]}]}"#).unwrap();
    /// let paths: Vec<String> = view.walk().into_iter().map(|(p, _)| p).collect();
    /// assert_eq!(paths, ["app", "app/sup", "app/sup/c"]);
    /// assert_eq!(view.at("app/sup/c").unwrap().status, "pending");
    /// ```
    pub fn walk(&self) -> Vec<(String, &Entry)> {
        fn go<'a>(e: &'a Entry, path: String, out: &mut Vec<(String, &'a Entry)>) {
            out.push((path.clone(), e));
            for c in e.children.iter().flatten() {
                go(c, format!("{path}/{}", c.id), out);
            }
        }
        let mut out = Vec::new();
        go(self, self.id.clone(), &mut out);
        out
    }

    /// The entry at `path` (as [`walk`](Self::walk) names it).
    pub fn at(&self, path: &str) -> Option<&Entry> {
        self.walk()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, e)| e)
    }
}

/// The value of the Prometheus sample `name{labels}` in a `/metrics`
/// text (`labels` as written between the braces, e.g.
/// `status="failed"`), if it is there.
///
/// ```
/// use pool_cluster_tests::views::metric;
/// let text = "# TYPE pool_apps gauge\npool_apps{status=\"failed\"} 1\npool_apps{status=\"running\"} 2\n";
/// assert_eq!(metric(text, "pool_apps", r#"status="failed""#), Some(1.0));
/// assert_eq!(metric(text, "pool_apps", r#"status="pending""#), None);
/// ```
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let want = format!("{name}{{{labels}}}");
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key.trim() == want).then(|| value.trim().parse().ok())?
    })
}
