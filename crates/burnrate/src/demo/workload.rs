//! The demo's tenants and the traffic each one sends through the gateway today.

use std::collections::BTreeMap;
use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};
use indicatif::ProgressBar;
use serde_json::json;

use super::conversation::{Conversation, Dialect, Tool, text};
use super::driver::{Answer, Driver, Who};

/// A demo tenant and what it pays (a `[[contracts]]` entry without the tenant line).
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    /// The tenant id.
    pub id: &'static str,
    /// Its contract's TOML keys.
    pub contract: &'static str,
}

/// The tenants with a story, then the long tail.
pub const TENANTS: [Tenant; 18] = [
    Tenant {
        id: "acme-corp",
        contract: "kind = \"bundled\"\nmonthly_fee_usd = \"1500\"\nincluded_usd = \"900\"\nmarkup = \"0.25\"\ntier = \"enterprise\"\nsignup = \"2025-11\"",
    },
    Tenant {
        id: "globex",
        contract: "kind = \"pass_through\"\nmarkup = \"1.2\"\ntier = \"growth\"\nsignup = \"2026-03\"",
    },
    Tenant {
        id: "initech",
        contract: "kind = \"outcome\"\nprice_per_outcome_usd = \"0.60\"\ntier = \"growth\"\nsignup = \"2026-06\"",
    },
    Tenant {
        id: "umbrella",
        contract: "kind = \"bundled\"\nmonthly_fee_usd = \"90\"\ntier = \"starter\"\nsignup = \"2026-08\"",
    },
    Tenant {
        id: "hooli",
        contract: "kind = \"bundled\"\nmonthly_fee_usd = \"600\"\ntier = \"growth\"\nsignup = \"2026-02\"",
    },
    Tenant {
        id: "stark-labs",
        contract: "kind = \"bundled\"\nmonthly_fee_usd = \"15\"\ntier = \"starter\"\nsignup = \"2026-10\"",
    },
    small("northwind"),
    small("contoso"),
    small("fabrikam"),
    small("tailspin"),
    small("wingtip"),
    small("litware"),
    small("proseware"),
    small("lucerne"),
    small("alpine-ski"),
    small("coho-winery"),
    small("margie-travel"),
    small("woodgrove"),
];

const fn small(id: &'static str) -> Tenant {
    Tenant {
        id,
        contract: "kind = \"pass_through\"\nmarkup = \"1.0\"\ntier = \"self-serve\"",
    }
}

/// Inbox-triage calls a day for each long-tail tenant (in [`TENANTS`] order after the six).
pub const LONG_TAIL_CALLS: [u32; 12] = [40, 24, 16, 12, 9, 7, 5, 4, 3, 2, 2, 1];

/// stark-labs' daily cap, in dollars.
pub const STARK_DAILY_CAP_USD: &str = "0.60";

/// The tenants' gateway keys.
pub type Keys = BTreeMap<&'static str, String>;

/// The scenarios, in the order their progress bars are shown: name, tenant, calls expected.
pub const SCENARIOS: [(&str, &str, u64); 8] = [
    (
        "support agent (coordinator, sub-agents, tools)",
        "acme-corp",
        340,
    ),
    ("inbox triage", "acme-corp", 120),
    ("research agent (streamed writer)", "globex", 170),
    ("code review with outcomes", "initech", 180),
    ("ops agent, looping on a failing tool", "umbrella", 124),
    ("doc Q&A, prompt change busts the cache", "hooli", 150),
    ("chat assist against a daily cap", "stark-labs", 170),
    ("the long tail (12 small tenants)", "…", 125),
];

/// One scenario's view of the driver: its progress bar moves with each call.
pub struct Lane<'a> {
    driver: &'a Driver,
    bar: ProgressBar,
}

impl Lane<'_> {
    async fn call(
        &self,
        who: &Who,
        conversation: &Conversation,
        model: &str,
        max_tokens: u32,
        stream: bool,
        mock: &[(&'static str, String)],
    ) -> anyhow::Result<Answer> {
        let answer = self
            .driver
            .call(who, conversation, model, max_tokens, stream, mock)
            .await;
        self.bar.inc(1);
        if let Ok(Answer::Degraded(how, _)) = &answer {
            self.bar.set_message(format!("degraded: {how}"));
        }
        if let Ok(Answer::Refused(status, code)) = &answer {
            self.bar.set_message(format!("refused {status} {code}"));
        }
        answer
    }

    /// One step of an agent: the model asks for a tool, the tool answers with `result_bytes`
    /// of text, the model answers. False when the gateway refused the run.
    async fn agent_step(
        &self,
        who: &Who,
        conversation: &mut Conversation,
        model: &str,
        result_bytes: usize,
        answer_tokens: u64,
    ) -> anyhow::Result<bool> {
        let answer = self
            .call(who, conversation, model, 2048, false, &[])
            .await?;
        let Some(reply) = answer.reply() else {
            return Ok(false);
        };
        if let Some(tool) = conversation.tool_use(reply) {
            conversation.tool_round(&tool, &text(&format!("{} result", tool.name), result_bytes));
            let output = [("x-mock-output-tokens", answer_tokens.to_string())];
            if self
                .call(who, conversation, model, 2048, false, &output)
                .await?
                .reply()
                .is_none()
            {
                return Ok(false);
            }
        }
        conversation.assistant("Done: the step's result is summarised above.");
        Ok(true)
    }
}

/// Runs `count` copies of `work` (given their index), `parallel` at a time.
async fn each<F, Fut>(count: u32, parallel: usize, work: F) -> anyhow::Result<()>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    stream::iter(0..count)
        .map(Ok)
        .try_for_each_concurrent(parallel, work)
        .await
}

const SEARCH_KB: Tool = Tool {
    name: "search_kb",
    description: "Search the help centre",
};
const LOOKUP_ORDER: Tool = Tool {
    name: "lookup_order",
    description: "Find an order by id",
};
const ISSUE_REFUND: Tool = Tool {
    name: "issue_refund",
    description: "Refund an order",
};
const WEB_SEARCH: Tool = Tool {
    name: "web_search",
    description: "Search the web",
};
const FETCH_PAGE: Tool = Tool {
    name: "fetch_page",
    description: "Fetch a page",
};
const RUN_SQL: Tool = Tool {
    name: "run_sql",
    description: "Query the warehouse",
};
const READ_FILE: Tool = Tool {
    name: "read_file",
    description: "Read a file of the pull request",
};
const RUN_TESTS: Tool = Tool {
    name: "run_tests",
    description: "Run the test suite",
};
const FETCH_LOGS: Tool = Tool {
    name: "fetch_logs",
    description: "Fetch a service's logs",
};
const RESTART_SERVICE: Tool = Tool {
    name: "restart_service",
    description: "Restart a service",
};

/// Runs every scenario at once, each with its progress bar (in [`SCENARIOS`] order).
pub async fn run(driver: &Driver, keys: &Keys, bars: Vec<ProgressBar>) -> anyhow::Result<()> {
    let key = |tenant: &str| keys.get(tenant).cloned().unwrap_or_default();
    let mut bars = bars.into_iter();
    let mut lane = || Lane {
        driver,
        bar: bars.next().unwrap_or_else(ProgressBar::hidden),
    };
    let (support, triage, research, review, ops, docs, chat, tail) = (
        lane(),
        lane(),
        lane(),
        lane(),
        lane(),
        lane(),
        lane(),
        lane(),
    );
    tokio::try_join!(
        scenario(
            &support,
            "36 runs, each with sub-agents",
            support_agent(&support, key("acme-corp"))
        ),
        scenario(
            &triage,
            "cached system prompt",
            inbox_triage(&triage, key("acme-corp"))
        ),
        scenario(
            &research,
            "24 runs",
            research_agent(&research, key("globex"))
        ),
        scenario(
            &review,
            "outcomes reported",
            code_review(&review, key("initech"))
        ),
        scenario(
            &ops,
            "looping runs stopped by the loop detector",
            ops_agent(&ops, key("umbrella"))
        ),
        scenario(
            &docs,
            "v3.2 writes the cache on every call",
            doc_qa(&docs, key("hooli"))
        ),
        scenario(
            &chat,
            "fell back, answered from cache, then refused",
            chat_assist(&chat, key("stark-labs"))
        ),
        scenario(&tail, "", long_tail(&tail, keys)),
    )?;
    Ok(())
}

/// Runs one scenario, then closes its progress bar with `note`.
async fn scenario(
    lane: &Lane<'_>,
    note: &str,
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    work.await?;
    lane.bar.set_length(lane.bar.position());
    lane.bar.finish_with_message(note.to_string());
    Ok(())
}

/// acme-corp's support agent: a coordinator (Claude) that looks things up with tools and
/// hands parts to a researcher (GPT) and, for refunds, a refund agent (Claude Haiku).
async fn support_agent(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    each(36, 4, |n| {
        let key = key.clone();
        async move {
            let who = Who {
                key,
                user: format!("acme-u{:02}", n % 14),
                feature: "support-agent",
                route: "/api/support/chat",
                run: Some(format!("acme-support-{n:03}")),
                agent: Some("coordinator"),
                session: Some(format!("acme-session-{n:03}")),
                prompt_version: Some("v2.3"),
                ..Who::default()
            };
            let mut coordinator = Conversation::new(
                Dialect::Anthropic,
                text("You are Acme's support coordinator", 14_000),
                vec![SEARCH_KB, LOOKUP_ORDER, ISSUE_REFUND],
            );
            let steps: &[&str] = match n % 3 {
                0 => &["search_kb", "lookup_order", "issue_refund"],
                _ => &["search_kb", "lookup_order"],
            };
            for (step, tool) in steps.iter().enumerate() {
                coordinator.user(&text("Customer ticket", 900));
                coordinator.prefer(tool);
                if !lane
                    .agent_step(&who, &mut coordinator, "claude-sonnet-4-5", 2_400, 220)
                    .await?
                {
                    return Ok(());
                }
                if step == 0 {
                    let mut researcher = Conversation::new(
                        Dialect::OpenAi,
                        text("You research a customer's history", 6_000),
                        vec![SEARCH_KB],
                    )
                    .with_cache_key("acme-researcher");
                    researcher.user(&text("Find the customer's past tickets", 600));
                    lane.agent_step(
                        &who.sub_agent("researcher"),
                        &mut researcher,
                        "gpt-4.1-mini",
                        5_000,
                        300,
                    )
                    .await?;
                }
                if *tool == "issue_refund" {
                    let mut refunds = Conversation::new(
                        Dialect::Anthropic,
                        text("You check refunds against the policy", 5_000),
                        vec![ISSUE_REFUND],
                    );
                    refunds.user(&text("Refund order", 400));
                    lane.agent_step(
                        &who.sub_agent("refund-agent"),
                        &mut refunds,
                        "claude-haiku-4-5",
                        800,
                        120,
                    )
                    .await?;
                }
            }
            Ok(())
        }
    })
    .await
}

/// acme-corp's inbox triage: one call per e-mail on a small model, prompt cache keyed.
async fn inbox_triage(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    each(120, 4, |n| {
        let key = key.clone();
        async move {
            let who = Who {
                key,
                user: format!("acme-u{:02}", n % 40),
                feature: "inbox-triage",
                route: "/api/inbox/triage",
                run: Some(format!("acme-triage-{n:04}")),
                agent: Some("triager"),
                prompt_version: Some("v1.5"),
                ..Who::default()
            };
            let mut conversation = Conversation::new(
                Dialect::OpenAi,
                text("Label the e-mail: billing, bug, sales or spam", 6_000),
                Vec::new(),
            )
            .with_cache_key("triage-v1.5");
            conversation.user(&text("E-mail", 1_500));
            let output = [("x-mock-output-tokens", "12".to_string())];
            lane.call(&who, &conversation, "gpt-4.1-mini", 300, false, &output)
                .await?;
            Ok(())
        }
    })
    .await
}

/// globex's research agent: a GPT-4.1 coordinator with web tools, an analyst (o4-mini) and a
/// writer (Claude, streamed) as sub-agents.
async fn research_agent(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    each(24, 3, |n| {
        let key = key.clone();
        async move {
            let who = Who {
                key,
                user: format!("globex-u{:02}", n % 6),
                feature: "research-agent",
                route: "/api/research",
                run: Some(format!("globex-research-{n:03}")),
                agent: Some("coordinator"),
                prompt_version: Some("v1.7"),
                ..Who::default()
            };
            let mut coordinator = Conversation::new(
                Dialect::OpenAi,
                text("You plan market research", 10_000),
                vec![WEB_SEARCH, FETCH_PAGE],
            )
            .with_cache_key("globex-research");
            for tool in ["web_search", "fetch_page"] {
                coordinator.user(&text("Research question", 700));
                coordinator.prefer(tool);
                lane.agent_step(&who, &mut coordinator, "gpt-4.1", 8_000, 400)
                    .await?;
            }
            let mut analyst = Conversation::new(
                Dialect::OpenAi,
                text("You analyse the numbers", 4_000),
                vec![RUN_SQL],
            );
            analyst.user(&text("Size the market from the warehouse", 600));
            lane.agent_step(
                &who.sub_agent("analyst"),
                &mut analyst,
                "o4-mini",
                6_000,
                900,
            )
            .await?;
            let mut writer = Conversation::new(
                Dialect::Anthropic,
                text("You write the research brief", 6_000),
                Vec::new(),
            );
            writer.user(&text("Findings", 12_000));
            let output = [("x-mock-output-tokens", "1500".to_string())];
            lane.call(
                &who.sub_agent("writer"),
                &writer,
                "claude-sonnet-4-5",
                4096,
                true,
                &output,
            )
            .await?;
            Ok(())
        }
    })
    .await
}

/// initech's code review agent; its CI reports a successful review (a merged pull request)
/// as an outcome through the events API, which its outcome contract bills for.
async fn code_review(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    each(30, 3, |n| {
        let key = key.clone();
        async move {
            let run = format!("initech-review-{n:03}");
            let who = Who {
                key: key.clone(),
                user: format!("initech-u{:02}", n % 9),
                feature: "code-review",
                route: "/api/review",
                run: Some(run.clone()),
                agent: Some("reviewer"),
                prompt_version: Some("v3.1"),
                ..Who::default()
            };
            let mut reviewer = Conversation::new(
                Dialect::Anthropic,
                text("You review pull requests", 12_000),
                vec![READ_FILE, RUN_TESTS],
            );
            for tool in ["read_file", "run_tests"] {
                reviewer.user(&text("Pull request diff", 3_000));
                reviewer.prefer(tool);
                lane.agent_step(&who, &mut reviewer, "claude-sonnet-4-5", 6_000, 350)
                    .await?;
            }
            let mut tester = Conversation::new(
                Dialect::OpenAi,
                text("You write missing tests", 5_000),
                vec![RUN_TESTS],
            );
            tester.user(&text("Cover the changed function", 2_000));
            lane.agent_step(
                &who.sub_agent("tester"),
                &mut tester,
                "gpt-4.1-mini",
                3_000,
                600,
            )
            .await?;
            if n % 10 < 7 {
                let outcome = json!({
                    "ts": chrono::Utc::now(), "provider": "openai", "model": "gpt-4.1-mini",
                    "operation": "chat", "feature": "code-review", "route": "/api/review",
                    "user_id": who.user, "agent_run_id": run, "agent_name": "merge-check",
                    "usage": {"input_tokens": 900, "output_tokens": 12},
                    "outcome": {"name": "pr_merged", "success": true},
                });
                lane.driver.post_events(&key, &[outcome]).await?;
            }
            Ok(())
        }
    })
    .await
}

/// umbrella's ops agent: ten normal runs, and a broken integration whose runs call
/// `restart_service` again and again as the tool keeps failing, each answer carrying a long
/// error log, until the gateway's loop detector stops the run.
async fn ops_agent(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    each(24, 3, |n| {
        let key = key.clone();
        async move {
            let looping = n >= 10;
            let who = Who {
                key,
                user: format!("umbrella-u{:02}", n % 4),
                feature: "ops-agent",
                route: "/api/ops",
                run: Some(format!("umbrella-ops-{n:03}")),
                agent: Some("operator"),
                prompt_version: Some("v1.2"),
                ..Who::default()
            };
            let mut operator = Conversation::new(
                Dialect::OpenAi,
                text("You operate the platform", 8_000),
                vec![FETCH_LOGS, RESTART_SERVICE],
            );
            if !looping {
                for _ in 0..2 {
                    operator.user(&text("Alert", 500));
                    lane.agent_step(&who, &mut operator, "gpt-4.1", 4_000, 200)
                        .await?;
                }
                return Ok(());
            }
            operator.prefer("restart_service");
            operator.user("Service api-7 is down: restart it.");
            // The mock provider calls the tool again whatever the result (`x-mock-tool-calls:
            // 1`), as a model does when the integration keeps failing the same way.
            let again = [("x-mock-tool-calls", "1".to_string())];
            for _ in 0..12 {
                let answer = lane
                    .call(&who, &operator, "gpt-4.1", 1024, false, &again)
                    .await?;
                let Some(call) = answer.reply().and_then(|r| operator.tool_use(r)) else {
                    break;
                };
                operator.tool_round(
                    &call,
                    &text(
                        "restart_service failed: connection refused. Log tail",
                        40_000,
                    ),
                );
            }
            Ok(())
        }
    })
    .await
}

/// hooli's document Q&A: a long cached system prompt; prompt v3.2 puts the time at its top,
/// so no two calls share a prefix and every call writes the cache instead of reading it.
async fn doc_qa(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    let manual = text("You answer from the product manual", 24_000);
    each(150, 4, |n| {
        let key = key.clone();
        let manual = &manual;
        async move {
            let busted = n >= 30;
            let who = Who {
                key,
                user: format!("hooli-u{:02}", n % 25),
                feature: "doc-qa",
                route: "/api/docs/ask",
                session: Some(format!("hooli-session-{:03}", n / 3)),
                prompt_version: Some(if busted { "v3.2" } else { "v3.1" }),
                ..Who::default()
            };
            let system = match busted {
                true => format!(
                    "Current time: {}\n{manual}",
                    chrono::Utc::now().to_rfc3339()
                ),
                false => manual.clone(),
            };
            // The mock provider keeps no cache between calls: the demo tells it what the
            // provider's cache does with a prefix seen for the first time (all written,
            // nothing read).
            let mock = match busted {
                true => vec![
                    ("x-mock-cached-tokens", "0".to_string()),
                    ("x-mock-cache-write-tokens", (system.len() / 4).to_string()),
                ],
                false => Vec::new(),
            };
            let mut conversation = Conversation::new(Dialect::Anthropic, system, Vec::new());
            conversation.user(&text("How do I", 300));
            let mut mock = mock;
            mock.push(("x-mock-output-tokens", "180".to_string()));
            lane.call(&who, &conversation, "claude-sonnet-4-5", 1024, false, &mock)
                .await?;
            Ok(())
        }
    })
    .await
}

/// stark-labs' chat assistant, on a plan with a daily cap: past 80% of the cap the gateway
/// serves GPT-4.1 calls with GPT-4.1-mini, past 90% it answers repeated questions from its
/// cache, and at the cap it refuses with a quota error.
async fn chat_assist(lane: &Lane<'_>, key: String) -> anyhow::Result<()> {
    let handbook = text("You help engineers with the SDK", 16_000);
    let mut refused = 0;
    for n in 0..400u32 {
        let who = Who {
            key: key.clone(),
            user: format!("stark-u{:02}", n % 5),
            feature: "chat-assist",
            route: "/api/assist",
            prompt_version: Some("v1.0"),
            ..Who::default()
        };
        let mut conversation = Conversation::new(Dialect::OpenAi, handbook.clone(), Vec::new());
        // A third of the questions are the same few FAQs (the gateway's cache can answer a
        // repeat once the ladder allows it); the rest are new.
        conversation.user(&match n % 3 {
            0 => format!("Frequently asked question {}", n % 4),
            _ => format!("Question {n} about the SDK"),
        });
        let output = [("x-mock-output-tokens", "150".to_string())];
        if let Answer::Refused(..) = lane
            .call(&who, &conversation, "gpt-4.1", 400, false, &output)
            .await?
        {
            refused += 1;
            if refused == 10 {
                break;
            }
        }
    }
    Ok(())
}

/// Twelve small tenants on inbox triage, from 40 calls a day down to one.
async fn long_tail(lane: &Lane<'_>, keys: &Keys) -> anyhow::Result<()> {
    let tenants: Vec<(&str, u32)> = TENANTS[6..]
        .iter()
        .zip(LONG_TAIL_CALLS)
        .map(|(t, calls)| (t.id, calls))
        .collect();
    stream::iter(
        tenants
            .into_iter()
            .flat_map(|(tenant, calls)| (0..calls).map(move |n| (tenant, n))),
    )
    .map(Ok)
    .try_for_each_concurrent(3, |(tenant, n)| async move {
        let who = Who {
            key: keys.get(tenant).cloned().unwrap_or_default(),
            user: format!("{tenant}-u{}", n % 3),
            feature: "inbox-triage",
            route: "/api/inbox/triage",
            ..Who::default()
        };
        let mut conversation = Conversation::new(
            Dialect::OpenAi,
            text("Label the e-mail: billing, bug, sales or spam", 6_000),
            Vec::new(),
        );
        conversation.user(&text("E-mail", 1_500));
        lane.call(&who, &conversation, "gpt-4.1-mini", 300, false, &[])
            .await?;
        anyhow::Ok(())
    })
    .await
}
