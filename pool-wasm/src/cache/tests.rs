use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pool_proto::module::ModuleHash;

use super::ModuleCache;

fn h(i: u8) -> ModuleHash {
    ModuleHash::of(&[i])
}

/// Eight concurrent first gets of one module run its load once, and all
/// eight get the loaded value.
#[tokio::test]
async fn concurrent_first_gets_load_once() {
    let cache = Arc::new(ModuleCache::<u32>::new(4, "e", 1));
    let loads = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cache, loads, mut go) = (cache.clone(), loads.clone(), go_rx.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get(h(1), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Held until every getter is waiting on this load.
                    let _ = go.wait_for(|g| *g).await;
                    Ok(7)
                })
                .await
        }));
    }
    tokio::task::yield_now().await;
    go_tx.send(true).unwrap();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(7));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.cached(), vec![h(1)]);
}

/// A failed load is not kept: the next get loads again and can succeed.
#[tokio::test]
async fn failed_load_is_retried() {
    let cache = ModuleCache::<u32>::new(4, "e", 1);
    assert_eq!(
        cache.get(h(1), || async { Err("down".to_string()) }).await,
        Err("down".to_string())
    );
    assert!(cache.cached().is_empty());
    assert_eq!(cache.get(h(1), || async { Ok(3) }).await, Ok(3));
    assert_eq!(cache.cached(), vec![h(1)]);
}

/// Over its bound the cache drops the least recently used module, and a
/// later get of it loads again.
#[tokio::test]
async fn least_recently_used_goes_first() {
    let cache = ModuleCache::<u32>::new(2, "e", 1);
    for i in 1..=2 {
        cache
            .get(h(i), || async move { Ok(u32::from(i)) })
            .await
            .unwrap();
    }
    // Use 1 again: 2 is now the least recent.
    cache
        .get(h(1), || async { Err("not loaded again".to_string()) })
        .await
        .unwrap();
    cache.get(h(3), || async { Ok(3) }).await.unwrap();
    assert_eq!(cache.cached(), vec![h(3), h(1)]);
    assert_eq!(cache.get(h(2), || async { Ok(20) }).await, Ok(20));
}
