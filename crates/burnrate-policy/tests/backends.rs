//! The two state backends agree: every operation, run against a real `redis-server` and
//! against memory, gives the same answers. Needs `redis-server` on the PATH (CI installs
//! it); without it this test fails rather than skips.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use burnrate_policy::State;
use burnrate_policy::state::memory::MemoryState;
use burnrate_policy::state::redis::RedisState;
use burnrate_policy::state::{
    BudgetCheck, Exceeded, Lease, Level, RateCheck, RateOutcome, Reserve, RunBounds, RunUsage,
};

/// A throwaway `redis-server` on a free loopback port, stopped on drop.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }

    async fn state(&self) -> State {
        for _ in 0..100 {
            if let Ok(state) = RedisState::connect(&self.url).await {
                return State::Redis(state);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not come up at {}", self.url);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FAR: i64 = 4_000_000_000;

fn budget(key: &str, limit: i64, enforce: bool) -> BudgetCheck {
    BudgetCheck {
        key: key.into(),
        limit,
        enforce,
        expire_at: FAR,
    }
}

fn bounds() -> RunBounds {
    RunBounds {
        max_tokens: 1_000,
        max_tool_calls: 3,
        max_depth: 1,
        loop_repeats: 2,
        max_cost: 150_000,
        ttl_s: 600,
    }
}

/// One scenario over every operation; returns what each step answered.
async fn scenario(state: &State) -> Vec<String> {
    let mut seen = Vec::new();
    let mut note = |text: String| seen.push(text);

    // Rate limits: exactly the limit in a burst, all or nothing across limits.
    let rpm = |cost| RateCheck {
        key: "r:rpm".into(),
        limit: 5,
        cost,
    };
    let tpm = |cost| RateCheck {
        key: "r:tpm".into(),
        limit: 1_000,
        cost,
    };
    let mut allowed = 0;
    for _ in 0..8 {
        match state.rate_take(&[rpm(1), tpm(100)]).await.unwrap() {
            RateOutcome::Allowed { reset_us } => {
                allowed += 1;
                note(format!("remaining {}", rpm(1).remaining(reset_us[0])));
            }
            RateOutcome::Denied {
                index,
                retry_after_us,
            } => {
                // Retry-After rounds up to the next second: ~12 s for one request in 5/min.
                let seconds = retry_after_us.map(|us| (us + 999_999) / 1_000_000);
                note(format!("denied {index} after {seconds:?}"));
            }
        }
    }
    note(format!("allowed {allowed}"));
    // The token bucket took 5 × 100 of 1,000: 600 more does not fit, and takes nothing.
    let big = state.rate_take(&[tpm(600)]).await.unwrap();
    note(format!(
        "big fits: {}",
        matches!(big, RateOutcome::Allowed { .. })
    ));
    state.rate_correct("r:tpm", 1_000, -400).await.unwrap();
    let after = state.rate_take(&[tpm(600)]).await.unwrap();
    note(format!(
        "after refund fits: {}",
        matches!(after, RateOutcome::Allowed { .. })
    ));
    let never = state.rate_take(&[tpm(5_000)]).await.unwrap();
    note(format!("{never:?}"));

    // Budgets: all or nothing, shadow counters never refuse, settlement and seeding (once,
    // on top of what a counter already holds).
    let checks = [
        budget("b:day", 100, true),
        budget("b:month", 150, true),
        budget("b:shadow", 10, false),
    ];
    let early = Lease::new(1, 600);
    state.budget_reserve(&checks[1..2], &early).await.unwrap();
    state.budget_settle(&checks[1..2], &early, 1).await.unwrap();
    state.budget_seed("b:month", 19, FAR).await.unwrap();
    state.budget_seed("b:month", 99, FAR).await.unwrap();
    let first = Lease::new(60, 600);
    note(format!(
        "{:?}",
        state.budget_reserve(&checks, &first).await.unwrap()
    ));
    note(format!(
        "{:?}",
        state
            .budget_reserve(&checks, &Lease::new(60, 600))
            .await
            .unwrap()
    ));
    note(format!(
        "{:?}",
        state.budget_settle(&checks, &first, 35).await.unwrap()
    ));
    note(format!(
        "settled twice {:?}",
        state.budget_settle(&checks, &first, 0).await.unwrap()
    ));
    let second = Lease::new(60, 600);
    note(format!(
        "{:?}",
        state.budget_reserve(&checks, &second).await.unwrap()
    ));
    // A lease whose call never settles lapses: the next reservation releases it, and a late
    // settlement releases nothing a second time.
    let lapsing = Lease::new(50, 0);
    let lapse = [budget("b:lapse", 100, true)];
    note(format!(
        "{:?}",
        state.budget_reserve(&lapse, &lapsing).await.unwrap()
    ));
    note(format!(
        "after lapse {:?}",
        state
            .budget_reserve(&lapse, &Lease::new(90, 600))
            .await
            .unwrap()
    ));
    note(format!(
        "late settle {:?}",
        state.budget_settle(&lapse, &lapsing, 5).await.unwrap()
    ));
    let keys: Vec<String> = checks.iter().map(|check| check.key.clone()).collect();
    note(format!("{:?}", state.budget_levels(&keys).await.unwrap()));
    let unknown = state.budget_levels(&["b:none".into()]).await.unwrap();
    assert_eq!(unknown, vec![Level::default()]);

    // Counters and flags.
    state.counter_seed("c", 10, FAR).await.unwrap();
    state.counter_seed("c", 50, FAR).await.unwrap();
    note(format!(
        "counter {}",
        state.counter_add("c", 5, FAR).await.unwrap()
    ));
    note(format!(
        "flag {}",
        state.flag_raise("f", FAR).await.unwrap()
    ));
    note(format!(
        "flag {}",
        state.flag_raise("f", FAR).await.unwrap()
    ));
    note(format!(
        "up {} {}",
        state.flag_up("f").await.unwrap(),
        state.flag_up("g").await.unwrap()
    ));

    // Pauses.
    note(format!(
        "pause {}",
        state.pause("acme", "z=9.1").await.unwrap()
    ));
    note(format!(
        "pause {}",
        state.pause("acme", "again").await.unwrap()
    ));
    note(format!("{:?}", state.paused("acme").await.unwrap()));
    note(format!("{:?}", state.pauses().await.unwrap()));
    note(format!("resume {}", state.resume("acme").await.unwrap()));
    note(format!("{:?}", state.paused("acme").await.unwrap()));

    // Runs: depth through parents, each limit, the loop detector.
    note(format!(
        "{:?}",
        state.run_admit("root", None, bounds()).await.unwrap()
    ));
    note(format!(
        "{:?}",
        state
            .run_admit("child", Some("root"), bounds())
            .await
            .unwrap()
    ));
    note(format!(
        "{:?}",
        state
            .run_admit("grandchild", Some("child"), bounds())
            .await
            .unwrap()
    ));
    let usage = |tokens: u64, tools: &[&str]| RunUsage {
        tokens,
        tool_calls: tools.len() as u64,
        cost: 0,
        tools: tools.iter().map(|tool| tool.to_string()).collect(),
    };
    let spend = RunUsage {
        tokens: 10,
        cost: 100_000,
        ..RunUsage::default()
    };
    for (run, call) in [
        ("root", usage(900, &["search:aa"])),
        ("root", usage(200, &[])),
        ("loop", usage(10, &["search:aa", "fetch:bb"])),
        ("loop", usage(10, &["search:aa"])),
        ("tools", usage(10, &["a:1", "b:1", "c:1"])),
        ("tools", usage(10, &["d:1"])),
        // The adaptive cost limit, 150,000 nanodollars: the second call passes it.
        ("spend", spend.clone()),
        ("spend", spend.clone()),
    ] {
        note(format!(
            "{run}: {:?}",
            state.run_settle(run, &call, bounds()).await.unwrap()
        ));
    }
    note(format!(
        "{:?}",
        state.run_admit("root", None, bounds()).await.unwrap()
    ));
    // Sub-agents' tokens and tool calls count for every run above them, and a run stops
    // with any run above it: 600 + 600 tokens pass each run's own 1,000, not their tree's.
    note(format!(
        "{:?}",
        state.run_admit("tree", None, bounds()).await.unwrap()
    ));
    for (run, parent, call) in [
        ("tree.a", "tree", usage(600, &["x:1"])),
        ("tree.b", "tree", usage(600, &["x:1", "y:1"])),
    ] {
        note(format!(
            "{:?}",
            state.run_admit(run, Some(parent), bounds()).await.unwrap()
        ));
        note(format!(
            "{run}: {:?}",
            state.run_settle(run, &call, bounds()).await.unwrap()
        ));
    }
    for (run, parent) in [
        ("tree", None),
        ("tree.a", Some("tree")),
        ("tree.c", Some("tree")),
    ] {
        note(format!(
            "{run} after: {:?}",
            state.run_admit(run, parent, bounds()).await.unwrap()
        ));
    }
    // A parent first seen through its sub-agent keeps what the sub-agent counted.
    note(format!(
        "{:?}",
        state
            .run_admit("kid", Some("late"), bounds())
            .await
            .unwrap()
    ));
    note(format!(
        "kid: {:?}",
        state
            .run_settle("kid", &usage(800, &[]), bounds())
            .await
            .unwrap()
    ));
    note(format!(
        "late: {:?}",
        state.run_admit("late", None, bounds()).await.unwrap()
    ));
    note(format!(
        "late: {:?}",
        state
            .run_settle("late", &usage(300, &[]), bounds())
            .await
            .unwrap()
    ));
    // A link learned after a run registered counts: `leaf` registers before `mid` names
    // its own parent, and its calls still count for `top`.
    for (run, parent) in [("leaf", Some("mid")), ("mid", Some("top")), ("top", None)] {
        state.run_admit(run, parent, bounds()).await.unwrap();
    }
    state
        .run_settle("leaf", &usage(1_001, &[]), bounds())
        .await
        .unwrap();
    note(format!(
        "top: {:?}",
        state.run_admit("top", None, bounds()).await.unwrap()
    ));
    // Parent ids that loop back count a call once per run.
    let deep = RunBounds {
        max_depth: 5,
        ..bounds()
    };
    state
        .run_admit("ring.a", Some("ring.b"), deep)
        .await
        .unwrap();
    state
        .run_admit("ring.b", Some("ring.a"), deep)
        .await
        .unwrap();
    for _ in 0..2 {
        state
            .run_settle("ring.b", &usage(600, &[]), deep)
            .await
            .unwrap();
        note(format!(
            "ring: {:?}",
            state
                .run_admit("ring.b", Some("ring.a"), deep)
                .await
                .unwrap()
                .exceeded
        ));
    }
    // A run settled before it was admitted (its state lost in between) keeps its tokens.
    note(format!(
        "lost: {:?}",
        state
            .run_settle("lost", &usage(700, &[]), bounds())
            .await
            .unwrap()
    ));
    note(format!(
        "{:?}",
        state.run_admit("lost", None, bounds()).await.unwrap()
    ));
    note(format!(
        "lost: {:?}",
        state
            .run_settle("lost", &usage(400, &[]), bounds())
            .await
            .unwrap()
    ));
    seen
}

#[tokio::test]
async fn redis_and_memory_agree_on_every_operation() {
    let redis = Redis::start();
    let shared = redis.state().await;
    let local = State::Memory(MemoryState::new());
    let from_redis = scenario(&shared).await;
    let from_memory = scenario(&local).await;
    assert_eq!(from_redis, from_memory);
    // And the scenario itself says what it should.
    let text = from_memory.join("\n");
    assert!(text.contains("allowed 5"), "{text}");
    assert!(text.contains("denied 0 after Some(12)"), "{text}");
    assert!(text.contains("big fits: false"));
    assert!(text.contains("after refund fits: true"));
    assert!(text.contains("Denied { index: 0, retry_after_us: None }"));
    assert!(text.contains("Denied { index: 0, level: Level { spent: 0, reserved: 60 } }"));
    // Seeded once on top of the 1 already spent; settling twice releases once.
    assert!(
        text.contains("Level { spent: 55, reserved: 0 }, Level { spent: 35, reserved: 0 }"),
        "{text}"
    );
    assert!(
        text.contains("settled twice [Level { spent: 35, reserved: 0 }"),
        "{text}"
    );
    assert!(
        text.contains("after lapse Reserved([Level { spent: 0, reserved: 0 }])"),
        "{text}"
    );
    assert!(
        text.contains("late settle [Level { spent: 5, reserved: 90 }]"),
        "{text}"
    );
    assert!(text.contains("lost: Some(Tokens(1100))"), "{text}");
    assert!(text.contains("tree.b: None"), "{text}");
    assert!(
        text.contains(
            "tree after: RunView { depth: 0, exceeded: Some(Tokens(1200)), by_run_above: false }"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "tree.a after: RunView { depth: 1, exceeded: Some(Tokens(1200)), by_run_above: true }"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "tree.c after: RunView { depth: 1, exceeded: Some(Tokens(1200)), by_run_above: true }"
        ),
        "{text}"
    );
    assert!(text.contains("late: Some(Tokens(1100))"), "{text}");
    assert!(
        text.contains("ring: None\nring: Some(Tokens(1200))"),
        "{text}"
    );
    assert!(
        text.contains(
            "top: RunView { depth: 0, exceeded: Some(Tokens(1001)), by_run_above: false }"
        ),
        "{text}"
    );
    assert!(text.contains("spend: None"), "{text}");
    assert!(text.contains("spend: Some(Cost(200000))"), "{text}");
    assert!(text.contains("counter 15"));
    assert!(text.contains(&format!("{:?}", Some(Exceeded::Tokens(1_100)))));
    assert!(text.contains(&format!(
        "{:?}",
        Some(Exceeded::Loop("search:aa".into(), 2))
    )));
    assert!(text.contains(&format!("{:?}", Some(Exceeded::ToolCalls(4)))));
    assert!(text.contains(&format!("{:?}", Some(Exceeded::Depth(2)))));
    let _ = Reserve::Reserved(Vec::new());
}

#[tokio::test]
async fn replicas_sharing_redis_never_overshoot_a_budget() {
    let redis = Redis::start();
    let replicas = [redis.state().await, redis.state().await];
    let replicas = std::sync::Arc::new(replicas);
    let check = budget("b:shared", 1_000_000, true);
    let mut tasks = Vec::new();
    for call in 0..400u64 {
        let replicas = std::sync::Arc::clone(&replicas);
        let check = check.clone();
        tasks.push(tokio::spawn(async move {
            let state = &replicas[(call % 2) as usize];
            let worst = 5_000 + (call * 7_919 % 20_000) as i64;
            let lease = Lease::new(worst, 600);
            match state
                .budget_reserve(std::slice::from_ref(&check), &lease)
                .await
                .unwrap()
            {
                Reserve::Reserved(_) => {
                    let actual = worst * ((call % 10) as i64 + 1) / 10;
                    state
                        .budget_settle(std::slice::from_ref(&check), &lease, actual)
                        .await
                        .unwrap();
                    actual
                }
                Reserve::Denied { level, .. } => {
                    assert!(
                        level.committed() + worst > check.limit,
                        "refused a call that fit"
                    );
                    0
                }
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let level = replicas[0]
        .budget_levels(std::slice::from_ref(&check.key))
        .await
        .unwrap()[0];
    assert_eq!(level.spent, total);
    assert_eq!(level.reserved, 0);
    assert!(
        total <= check.limit,
        "spent {total} past the cap {}",
        check.limit
    );
    // Reservations outstanding at once may refuse calls whose real cost would have fit;
    // every refusal was checked against the level it met, above.
    assert!(total > 0, "nothing was spent");
}
