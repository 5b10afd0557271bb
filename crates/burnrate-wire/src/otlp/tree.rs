//! The spans of one request as a forest: inherited attribution, agent runs and depth, tool
//! calls, nested calls (rules in [`super::map_request`]). Spans are indexed by (trace id,
//! span id) only when some call or tool span has a parent; ancestor walks stop after
//! [`MAX_ANCESTORS`] steps, so a deep or cyclic parent chain costs a bounded amount.

use std::borrow::Cow;
use std::collections::HashMap;

use burnrate_model::dimension::Dimension;
use burnrate_model::{ToolCall, UsageEvent};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::attrs::{Carrier, Dim, Facts, Slot, text, valid_label_name};
use super::map::{apply_carrier, fill, id64, id128};
use super::{Mapped, OtlpMapping};
use crate::tools::{MAX_TOOLS, args_hash, clean, tool_name};

/// Most ancestors walked up from one span.
pub(crate) const MAX_ANCESTORS: usize = 64;

/// No index (for `carrier` and `call`).
const NONE: u32 = u32::MAX;

/// What a span is to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// An LLM call (an event).
    Call,
    /// `invoke_agent` or OpenInference `AGENT`: starts an agent (run).
    Agent,
    /// `execute_tool` or OpenInference `TOOL`.
    Tool,
    /// Anything else; passes attribution down.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    trace: u128,
    span: u64,
    /// Parent span id; 0 for none.
    parent: u64,
    kind: NodeKind,
    carrier: u32,
    call: u32,
}

#[derive(Debug)]
struct Call {
    event: UsageEvent,
    node: u32,
    resource: u32,
    start: u64,
    nested: bool,
    attached: u32,
    attached_tools: Vec<ToolCall>,
}

#[derive(Debug)]
struct ToolSpan<'a> {
    node: u32,
    start: u64,
    name: Option<Cow<'a, str>>,
    arguments: Option<&'a str>,
}

/// Where a resource attribute goes.
#[derive(Debug)]
enum Target<'a> {
    Dim(Dim),
    Label(&'a str),
}

/// Attribution a resource gives every call under it.
#[derive(Debug, Default)]
struct ResourceAttribution<'a> {
    /// Its `<prefix>` attributes.
    carrier: Carrier<'a>,
    /// Its attributes named in [`OtlpMapping::resource_dimensions`], in table order.
    table: Vec<(Target<'a>, Cow<'a, str>)>,
}

/// The spans of one request, as far as the tree needs them.
#[derive(Debug, Default)]
pub(crate) struct Tree<'a> {
    nodes: Vec<Node>,
    carriers: Vec<Carrier<'a>>,
    calls: Vec<Call>,
    tools: Vec<ToolSpan<'a>>,
    resources: Vec<ResourceAttribution<'a>>,
}

impl<'a> Tree<'a> {
    /// Registers a resource; returns its index for the calls under it.
    pub(crate) fn add_resource(
        &mut self,
        resource: Option<&'a Resource>,
        mapping: &'a OtlpMapping,
    ) -> u32 {
        let attributes: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        let mut facts = Facts::default();
        facts.scan(attributes, &mapping.prefixes);
        let carrier = Carrier::from_facts(&facts, false).unwrap_or_default();
        let mut table = Vec::new();
        for (name, dimension) in &mapping.resource_dimensions {
            let Some(attribute) = attributes.iter().find(|a| &a.key == name) else {
                continue;
            };
            let Ok(Some(value)) = text(attribute) else {
                continue;
            };
            let target = match dimension {
                Dimension::Field(field) => match Dim::from_field(*field) {
                    Some(dim) => Target::Dim(dim),
                    None => continue,
                },
                Dimension::Label(label) if valid_label_name(label) => Target::Label(label),
                Dimension::Label(_) => continue,
            };
            table.push((target, value));
        }
        self.resources.push(ResourceAttribution { carrier, table });
        index(self.resources.len() - 1)
    }

    /// Registers a call span and its event.
    pub(crate) fn add_call(
        &mut self,
        span: &'a Span,
        resource: u32,
        event: UsageEvent,
        carrier: Carrier<'a>,
    ) {
        let carrier = self.push_carrier(carrier);
        let call = index(self.calls.len());
        let node = self.push_node(span, NodeKind::Call, carrier, call);
        self.calls.push(Call {
            event,
            node,
            resource,
            start: span.start_time_unix_nano,
            nested: false,
            attached: 0,
            attached_tools: Vec::new(),
        });
    }

    /// Registers a span that is not an event: its attribution (attributes of the wrong type
    /// are skipped, as it has no event to reject), and for tool spans the tool.
    pub(crate) fn add_structure(&mut self, span: &'a Span, kind: NodeKind, facts: &Facts<'a>) {
        let carrier = match Carrier::from_facts(facts, false) {
            Ok(carrier) => self.push_carrier(carrier),
            Err(_) => NONE,
        };
        let node = self.push_node(span, kind, carrier, NONE);
        if kind == NodeKind::Tool && node != NONE {
            let name = facts
                .first(&[Slot::ToolName, Slot::OiToolName])
                .and_then(|a| text(a).ok().flatten());
            let arguments = facts.str(Slot::ToolCallArguments);
            self.tools.push(ToolSpan {
                node,
                start: span.start_time_unix_nano,
                name,
                arguments,
            });
        }
    }

    fn push_carrier(&mut self, carrier: Carrier<'a>) -> u32 {
        if carrier.is_empty() {
            return NONE;
        }
        self.carriers.push(carrier);
        index(self.carriers.len() - 1)
    }

    /// A node for a span with valid ids; `NONE` (not linkable) otherwise.
    fn push_node(&mut self, span: &Span, kind: NodeKind, carrier: u32, call: u32) -> u32 {
        let (Some(trace), Some(id)) = (id128(&span.trace_id), id64(&span.span_id)) else {
            return NONE;
        };
        self.nodes.push(Node {
            trace,
            span: id,
            parent: id64(&span.parent_span_id).unwrap_or(0),
            kind,
            carrier,
            call,
        });
        index(self.nodes.len() - 1)
    }

    /// Completes every event with what its ancestors, siblings and resource say, and moves
    /// the events into `mapped`.
    pub(crate) fn link(mut self, mapped: &mut Mapped) {
        let spans = self.index();
        let mut path = Vec::new();
        let mut groups = Vec::with_capacity(self.calls.len());
        for call in 0..self.calls.len() {
            let node = self.calls[call].node;
            self.ancestors(node, &spans, &mut path);
            self.mark_nested(&path);
            let agents = self.agents(&path);
            groups.push(self.group(node, agents.first().copied()));
            self.inherit(call, &path);
            self.set_runs(call, &path, &agents);
            self.apply_resource(call);
        }
        self.attach_tools(&spans, &groups, &mut path, mapped);
        for call in self.calls {
            if call.nested {
                mapped.nested_call_spans += 1;
                continue;
            }
            let mut event = call.event;
            event.tool_calls = event.tool_calls.max(call.attached);
            if event.tools.is_empty() {
                event.tools = call.attached_tools;
            }
            mapped.events.push(event);
        }
    }

    /// (trace, span) → node, when any call or tool has a parent to look up.
    fn index(&self) -> HashMap<(u128, u64), u32> {
        let linked = |node: u32| self.nodes.get(node as usize).is_some_and(|n| n.parent != 0);
        let needed =
            self.calls.iter().any(|c| linked(c.node)) || self.tools.iter().any(|t| linked(t.node));
        if !needed {
            return HashMap::new();
        }
        let mut spans = HashMap::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            spans.insert((node.trace, node.span), index(i));
        }
        spans
    }

    /// The ancestors of `node` in this request, nearest first.
    fn ancestors(&self, node: u32, spans: &HashMap<(u128, u64), u32>, path: &mut Vec<u32>) {
        path.clear();
        let Some(start) = self.nodes.get(node as usize) else {
            return;
        };
        let mut parent = start.parent;
        while parent != 0 && path.len() < MAX_ANCESTORS {
            match spans.get(&(start.trace, parent)) {
                Some(&found) if found != node => {
                    path.push(found);
                    parent = self.nodes[found as usize].parent;
                }
                _ => break,
            }
        }
    }

    /// Calls above a call report the same call (module documentation of `map_request`).
    fn mark_nested(&mut self, path: &[u32]) {
        for &ancestor in path {
            let node = self.nodes[ancestor as usize];
            if node.kind == NodeKind::Call
                && let Some(call) = self.calls.get_mut(node.call as usize)
            {
                call.nested = true;
            }
        }
    }

    /// The agent nodes on `path`, nearest first.
    fn agents(&self, path: &[u32]) -> Vec<u32> {
        path.iter()
            .copied()
            .filter(|&n| self.nodes[n as usize].kind == NodeKind::Agent)
            .collect()
    }

    /// Which calls and tools belong together: the nearest agent, else the parent.
    fn group(&self, node: u32, nearest_agent: Option<u32>) -> (u128, u64) {
        let Some(this) = self.nodes.get(node as usize) else {
            return (0, 0);
        };
        match nearest_agent {
            Some(agent) => (this.trace, self.nodes[agent as usize].span),
            None => (this.trace, this.parent),
        }
    }

    fn carrier(&self, node: u32) -> Option<&Carrier<'a>> {
        self.carriers
            .get(self.nodes.get(node as usize)?.carrier as usize)
    }

    /// Dimensions and labels the call does not set, from its nearest ancestor that does.
    fn inherit(&mut self, call: usize, path: &[u32]) {
        for &ancestor in path {
            let Some(carrier) = self
                .carriers
                .get(self.nodes[ancestor as usize].carrier as usize)
            else {
                continue;
            };
            apply_carrier(&mut self.calls[call].event, carrier, false);
        }
    }

    /// `agent_run_id`, `parent_run_id` and `span_depth` (rules in `map_request`).
    fn set_runs(&mut self, call: usize, path: &[u32], agents: &[u32]) {
        let Some(node) = self.nodes.get(self.calls[call].node as usize) else {
            return;
        };
        let trace = format!("{:032x}", node.trace);
        let resource = self.resources.get(self.calls[call].resource as usize);
        let explicit = |dim: Dim| -> Option<&str> {
            path.iter()
                .filter(|&&n| {
                    dim == Dim::ParentRun || self.nodes[n as usize].kind != NodeKind::Agent
                })
                .find_map(|&n| self.carrier(n).and_then(|c| c.get(dim)))
                .or_else(|| resource.and_then(|r| r.carrier.get(dim)))
        };
        let outer_run = explicit(Dim::AgentRun).unwrap_or(&trace);
        let run_of = |k: usize| -> Option<String> {
            let agent = *agents.get(k)?;
            let own = self.carrier(agent).and_then(|c| c.get(Dim::AgentRun));
            Some(match own {
                Some(run) => run.to_owned(),
                None if k + 1 == agents.len() => outer_run.to_owned(),
                None => format!("{trace}-{:016x}", self.nodes[agent as usize].span),
            })
        };
        let run = run_of(0).unwrap_or_else(|| outer_run.to_owned());
        let parent = run_of(1).or_else(|| explicit(Dim::ParentRun).map(str::to_owned));
        let event = &mut self.calls[call].event;
        fill(&mut event.agent_run_id, &run);
        if let Some(parent) = parent {
            fill(&mut event.parent_run_id, &parent);
        }
        event.span_depth = Some(u32::try_from(agents.len().saturating_sub(1)).unwrap_or(u32::MAX));
    }

    /// The resource's `<prefix>` attributes, then its table dimensions, where still unset.
    fn apply_resource(&mut self, call: usize) {
        let Some(resource) = self.resources.get(self.calls[call].resource as usize) else {
            return;
        };
        let event = &mut self.calls[call].event;
        apply_carrier(event, &resource.carrier, false);
        for (target, value) in &resource.table {
            match target {
                Target::Dim(dim) => fill(dim.field(event), value),
                Target::Label(name) => {
                    if !event.labels.contains_key(*name) {
                        event.labels.insert((*name).to_owned(), clean(value));
                    }
                }
            }
        }
    }

    /// Counts each tool span to the call that asked for it (rules in `map_request`).
    fn attach_tools(
        &mut self,
        spans: &HashMap<(u128, u64), u32>,
        groups: &[(u128, u64)],
        path: &mut Vec<u32>,
        mapped: &mut Mapped,
    ) {
        if self.tools.is_empty() {
            return;
        }
        let mut candidates: Vec<((u128, u64), u64, usize)> = (0..self.calls.len())
            .filter(|&c| !self.calls[c].nested)
            .map(|c| (groups[c], self.calls[c].start, c))
            .collect();
        candidates.sort_unstable();
        let tools = std::mem::take(&mut self.tools);
        for tool in &tools {
            match self.caller(tool, spans, &candidates, path) {
                Some(call) => self.attach(call, tool),
                None => mapped.unattached_tool_spans += 1,
            }
        }
    }

    /// The call a tool span belongs to: its parent when that is a call, else the latest call
    /// of its group that started before it.
    fn caller(
        &self,
        tool: &ToolSpan<'_>,
        spans: &HashMap<(u128, u64), u32>,
        candidates: &[((u128, u64), u64, usize)],
        path: &mut Vec<u32>,
    ) -> Option<usize> {
        self.ancestors(tool.node, spans, path);
        if let Some(&parent) = path.first() {
            let parent = self.nodes[parent as usize];
            if parent.kind == NodeKind::Call && !self.calls.get(parent.call as usize)?.nested {
                return Some(parent.call as usize);
            }
        }
        let nearest_agent = self.agents(path).first().copied();
        let group = self.group(tool.node, nearest_agent);
        let after = candidates.partition_point(|c| (c.0, c.1) <= (group, tool.start));
        let (found_group, _, call) = *candidates.get(after.checked_sub(1)?)?;
        (found_group == group).then_some(call)
    }

    fn attach(&mut self, call: usize, tool: &ToolSpan<'_>) {
        let call = &mut self.calls[call];
        call.attached = call.attached.saturating_add(1);
        if call.attached_tools.len() < MAX_TOOLS {
            call.attached_tools.push(ToolCall {
                name: tool_name(tool.name.as_deref().unwrap_or("")),
                args_hash: tool.arguments.map(args_hash),
            });
        }
    }
}

/// A vector index as `u32` (requests are far smaller than 4 billion spans; saturates).
fn index(i: usize) -> u32 {
    u32::try_from(i).map_or(NONE - 1, |i| i.min(NONE - 1))
}

#[cfg(test)]
mod tests;
