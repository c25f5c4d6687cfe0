//! The one runtime every Odoo exchange of the service runs on.
//!
//! reqwest keeps a pool of connections per client, and a pooled connection is driven by a
//! task of the runtime that opened it. Shared between runtimes of which one sleeps between
//! its own calls (a current-thread runtime inside a `block_on`), a connection taken from
//! the pool by another runtime waits for the sleeper: RPC calls stall until their timeout
//! (reqwest issues #1933, #2501). So the definitions sync, the log shipper and the RPC of
//! snippets all run as tasks of this runtime, whose worker threads never block.

use tokio::runtime::{Handle, Runtime};

/// Worker threads: Odoo exchanges wait on the network, they hardly use a core.
const WORKER_THREADS: usize = 2;

pub struct OdooRuntime {
    /// Taken out on drop: a runtime dropped inside another runtime's task would panic.
    runtime: Option<Runtime>,
}

impl OdooRuntime {
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("towerhook-odoo")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .expect("the Odoo runtime lives as long as its owner")
            .handle()
            .clone()
    }
}

impl Drop for OdooRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
