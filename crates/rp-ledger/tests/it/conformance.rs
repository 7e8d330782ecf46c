//! The same assertions for every store: `rp_payout::conformance`.

use std::sync::Arc;

use rp_ledger::Ledger;
use rp_model::ProjectId;
use rp_payout::{MemoryStore, PayoutStore, conformance};

fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_conforms() {
    conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn PayoutStore> }).await;
    conformance::projects_are_apart(&MemoryStore::new(), &MemoryStore::new()).await;
    conformance::pages_cover_everything_once(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_sqlite_ledger_conforms() {
    conformance::run_all(|| async {
        Ledger::open("sqlite::memory:")
            .await
            .unwrap()
            .store(project(1234))
    })
    .await;
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    conformance::projects_are_apart(
        ledger.store(project(1234)).as_ref(),
        ledger.store(project(77)).as_ref(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_ledger_conforms() {
    let dir = crate::scratch("conformance");
    let n = std::sync::atomic::AtomicU64::new(0);
    conformance::run_all(|| {
        let path = dir.join(format!(
            "ledger-{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        async move {
            Ledger::open(&format!("sqlite:{}", path.display()))
                .await
                .unwrap()
                .store(project(1234))
        }
    })
    .await;
    let ledger = Ledger::open(&format!("sqlite:{}", dir.join("two.db").display()))
        .await
        .unwrap();
    conformance::projects_are_apart(
        ledger.store(project(1234)).as_ref(),
        ledger.store(project(77)).as_ref(),
    )
    .await;
    let many = Ledger::open(&format!("sqlite:{}", dir.join("many.db").display()))
        .await
        .unwrap();
    conformance::pages_cover_everything_once(many.store(project(1234))).await;
}
