//! Executing prepared queries: resolve (ID, name, or template prefix), render templates
//! (`${name.full}`, `${name.prefix}`, `${name.suffix}`, `${match(N)}`), look the service
//! up in this datacenter, filter (tags with `!` exclusions, `OnlyPassing`, node and service
//! meta), and fail over to the query's other datacenters when nothing healthy is left.

use super::{Agent, AgentError};
use crate::dns::lookup::{DnsLookup, Instance, LookupError};
use crate::store::query::PreparedQuery;
use crate::types::{HEALTH_CRITICAL, HEALTH_PASSING};

/// The outcome of an execution.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub query: PreparedQuery,
    pub nodes: Vec<Instance>,
    pub datacenter: String,
    pub failovers: u32,
}

fn interpolate(s: &str, full: &str, prefix: &str, captures: &[String]) -> String {
    let suffix = full.strip_prefix(prefix).unwrap_or("");
    let mut out = s
        .replace("${name.full}", full)
        .replace("${name.prefix}", prefix)
        .replace("${name.suffix}", suffix);
    for (i, c) in captures.iter().enumerate() {
        out = out.replace(&format!("${{match({i})}}"), c);
    }
    out
}

/// Render a template query for the name it was executed as.
pub fn render(mut q: PreparedQuery, exec_name: &str) -> Result<PreparedQuery, AgentError> {
    if q.template.kind.is_empty() {
        return Ok(q);
    }
    if q.template.kind != "name_prefix_match" {
        return Err(AgentError::BadRequest(format!(
            "Unsupported template type {:?}",
            q.template.kind
        )));
    }
    let captures: Vec<String> = if q.template.regexp.is_empty() {
        Vec::new()
    } else {
        let re = regex_lite::Regex::new(&q.template.regexp)
            .map_err(|e| AgentError::BadRequest(format!("Invalid template regexp: {e}")))?;
        re.captures(exec_name)
            .map(|c| {
                c.iter()
                    .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    let prefix = q.name.clone();
    q.service.service = interpolate(&q.service.service, exec_name, &prefix, &captures);
    q.service.tags = q
        .service
        .tags
        .iter()
        .map(|t| interpolate(t, exec_name, &prefix, &captures))
        .collect();
    if q.template.remove_empty_tags {
        q.service.tags.retain(|t| !t.is_empty() && t != "!");
    }
    Ok(q)
}

/// Keep the instances the query wants.
pub fn select(q: &PreparedQuery, list: Vec<Instance>) -> Vec<Instance> {
    let s = &q.service;
    list.into_iter()
        .filter(|i| {
            if s.only_passing {
                i.status == HEALTH_PASSING
            } else {
                i.status != HEALTH_CRITICAL
            }
        })
        .filter(|i| {
            s.tags.iter().all(|t| match t.strip_prefix('!') {
                Some(neg) => !i.service.tags.iter().any(|x| x.eq_ignore_ascii_case(neg)),
                None => i.service.tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
            })
        })
        .filter(|i| {
            s.node_meta
                .iter()
                .all(|(k, v)| i.node.meta.get(k) == Some(v))
        })
        .filter(|i| {
            s.service_meta
                .iter()
                .all(|(k, v)| i.service.meta.get(k) == Some(v))
        })
        .collect()
}

impl Agent {
    /// Execute a prepared query by ID or name; `None` when no query matches.
    pub async fn execute_query(
        &self,
        id_or_name: &str,
        limit: usize,
    ) -> Result<Option<QueryResult>, AgentError> {
        let (_, q) = self.read(|s| s.query_resolve(id_or_name));
        let Some(q) = q else { return Ok(None) };
        let q = render(q, id_or_name)?;
        let mut dcs = vec![self.datacenter.clone()];
        for d in &q.service.failover.datacenters {
            if !dcs.contains(d) {
                dcs.push(d.clone());
            }
        }
        // NearestN: without network coordinates, the other known datacenters in name order.
        let mut extra = 0;
        for d in self.datacenters() {
            if extra >= q.service.failover.nearest_n as usize {
                break;
            }
            if !dcs.contains(&d) {
                dcs.push(d);
                extra += 1;
            }
        }
        let last = dcs.len() - 1;
        for (i, dc) in dcs.iter().enumerate() {
            let found = match DnsLookup::service(self, dc, &q.service.service, None).await {
                Ok(list) => list,
                Err(LookupError::UnknownDatacenter(_)) if i > 0 => continue,
                Err(e) if i > 0 => {
                    tracing::debug!(error = %e, %dc, "prepared query failover target failed");
                    continue;
                }
                Err(e) => return Err(AgentError::Raft(e.to_string())),
            };
            let mut nodes = select(&q, found);
            if nodes.is_empty() && i < last {
                continue;
            }
            for k in (1..nodes.len()).rev() {
                nodes.swap(k, rand::random::<usize>() % (k + 1));
            }
            // `Near`: nearest first by estimated round-trip time.
            if !q.service.near.is_empty() {
                let reference = if q.service.near == "_agent" {
                    self.node_name.clone()
                } else {
                    q.service.near.clone()
                };
                let coords = self.read(|s| s.coordinates().1);
                if let Some(rc) = coords.get(&reference).cloned() {
                    nodes.sort_by_key(|i| {
                        if i.node.node == reference {
                            std::time::Duration::ZERO
                        } else {
                            coords
                                .get(&i.node.node)
                                .map(|c| rc.distance_to(c))
                                .unwrap_or(std::time::Duration::MAX)
                        }
                    });
                }
            }
            if limit > 0 {
                nodes.truncate(limit);
            }
            return Ok(Some(QueryResult {
                query: q.clone(),
                nodes,
                datacenter: dc.clone(),
                failovers: i as u32,
            }));
        }
        Ok(Some(QueryResult {
            query: q,
            nodes: Vec::new(),
            datacenter: self.datacenter.clone(),
            failovers: last as u32,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{QueryService, QueryTemplate};
    use crate::types::{Node, NodeService};

    fn inst(tags: &[&str], status: &'static str) -> Instance {
        Instance {
            node: Node {
                node: "n".into(),
                ..Default::default()
            },
            service: NodeService {
                service: "s".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
            status,
            checks: Vec::new(),
        }
    }

    #[test]
    fn templates_render() {
        let q = PreparedQuery {
            name: "geo-db-".into(),
            template: QueryTemplate {
                kind: "name_prefix_match".into(),
                regexp: "^geo-db-(.*?)-([^\\-]+?)$".into(),
                remove_empty_tags: true,
            },
            service: QueryService {
                service: "mysql-${match(1)}".into(),
                tags: vec!["${match(2)}".into(), "${name.suffix}".into(), "".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let r = render(q, "geo-db-customer-primary").unwrap();
        assert_eq!(r.service.service, "mysql-customer");
        assert_eq!(r.service.tags, vec!["primary", "customer-primary"]);
    }

    #[test]
    fn selection() {
        let mut q = PreparedQuery::default();
        q.service.tags = vec!["primary".into(), "!experimental".into()];
        let list = vec![
            inst(&["primary"], "passing"),
            inst(&["primary", "experimental"], "passing"),
            inst(&["primary"], "critical"),
            inst(&["primary"], "warning"),
        ];
        assert_eq!(
            select(&q, list.clone()).len(),
            2,
            "critical and excluded tag dropped"
        );
        q.service.only_passing = true;
        assert_eq!(select(&q, list).len(), 1);
    }
}
