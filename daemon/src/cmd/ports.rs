//! `sited ports`: a node's resolved flows, or a layout's whole catalog as documentation.
//!
//! Both come from the catalog, like the firewall and the listeners, so the documentation cannot
//! disagree with what the node does.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::json;

use crate::catalog::{self, Endpoint, Layout, Row};
use crate::plan::{Direction, Flow, flows};

/// Arguments of `sited ports`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["file", "layout"])))]
pub struct Args {
    /// The site file.
    #[arg(requires = "node")]
    pub file: Option<PathBuf>,
    /// The node whose ports to print.
    #[arg(long)]
    pub node: Option<String>,
    /// Print a layout's whole catalog instead, with its conditions.
    #[arg(long, value_parser = parse_layout, conflicts_with = "file")]
    pub layout: Option<Layout>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Output formats of `sited ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// Markdown tables.
    Markdown,
    /// JSON.
    Json,
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    Layout::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Layout::ALL.iter().map(|l| l.name()).collect();
        format!("unknown layout; the layouts are {}", names.join(", "))
    })
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    if let Some(layout) = args.layout {
        print!("{}", layout_doc(layout, args.format));
        return ExitCode::SUCCESS;
    }
    let (Some(file), Some(name)) = (&args.file, &args.node) else {
        return ExitCode::from(super::FAILURE);
    };
    let site = match super::load_site(file) {
        Ok(site) => site,
        Err(code) => return code,
    };
    let Some(node) = site.node(name) else {
        let names: Vec<&str> = site.nodes.iter().map(|n| n.name.as_str()).collect();
        eprintln!(
            "sited: no node \"{name}\" in {}; the nodes are {}",
            file.display(),
            names.join(", ")
        );
        return ExitCode::from(super::INVALID);
    };
    print!("{}", node_doc(&flows(&site, node), args.format));
    ExitCode::SUCCESS
}

/// A node's flows, in one format.
pub fn node_doc(flows: &[Flow], format: Format) -> String {
    match format {
        Format::Json => {
            let rows = crate::plan::flow::json_rows(flows);
            format!(
                "{}\n",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            )
        }
        Format::Table | Format::Markdown => {
            let header = [
                "direction",
                "proto",
                "port",
                "peers",
                "service",
                "purpose",
                "reference",
            ];
            let rows: Vec<Vec<String>> = flows
                .iter()
                .map(|f| {
                    vec![
                        match f.direction {
                            Direction::In => "in".into(),
                            Direction::Out => "out".into(),
                        },
                        f.proto.to_string(),
                        f.ports
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        f.peers.describe(),
                        f.service().to_string(),
                        f.row.purpose.to_string(),
                        f.row
                            .references
                            .first()
                            .map(|r| r.cite())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            if format == Format::Table {
                table(&header, &rows)
            } else {
                markdown(&header, &rows)
            }
        }
    }
}

/// A layout's catalog, in one format.
pub fn layout_doc(layout: Layout, format: Format) -> String {
    let all: Vec<&Row> = catalog::rows(layout).collect();
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|r| {
                json!({
                    "from": r.from.words(),
                    "to": r.to.words(),
                    "proto": r.proto,
                    "port": r.ports,
                    "service": r.service,
                    "purpose": r.purpose,
                    "conditions": r.condition_words(),
                    "decision": r.is_decision(),
                    "condition": r.condition_text(),
                    "references": r.references.iter().map(|x| x.cite()).collect::<Vec<_>>(),
                })
            })
            .collect();
        return format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    }
    let mut sections: Vec<(Endpoint, Endpoint)> = Vec::new();
    for r in &all {
        if !sections.contains(&(r.from, r.to)) {
            sections.push((r.from, r.to));
        }
    }
    let mut out = String::new();
    if format == Format::Markdown {
        out.push_str(&format!(
            "# {} ports (layout `{}`)\n\nGenerated by `sited ports --layout {}` from the catalog, which is transcribed from `{}`. Rows whose reference is `sited` are sited's own decisions where the document is silent.\n",
            layout.product(),
            layout.name(),
            layout.name(),
            layout.document()
        ));
    }
    let header = [
        "port",
        "protocol",
        "service",
        "purpose",
        "condition",
        "reference",
    ];
    for (from, to) in sections {
        let rows: Vec<Vec<String>> = all
            .iter()
            .filter(|r| (r.from, r.to) == (from, to))
            .map(|r| {
                vec![
                    r.ports.to_string(),
                    r.proto.name().to_uppercase(),
                    r.service.to_string(),
                    r.purpose.to_string(),
                    r.condition_text(),
                    r.references
                        .iter()
                        .map(|x| x.cite())
                        .collect::<Vec<_>>()
                        .join("; "),
                ]
            })
            .collect();
        let title = format!("{} → {}", from.describe(), to.describe());
        if format == Format::Markdown {
            out.push_str(&format!("\n## {title}\n\n{}", markdown(&header, &rows)));
        } else {
            out.push_str(&format!("\n{title}\n{}", table(&header, &rows)));
        }
    }
    out
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(
        header
            .iter()
            .map(|h| h.to_uppercase())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        out.push_str(&format!(
            "| {} |\n",
            row.iter()
                .map(|c| escape(c))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    out
}
