//! Renewal of the self-signed certificate: checked every [`super::TLS_RENEWAL_CHECK`], it is
//! generated again when less than [`crate::web::tls::RENEW_BEFORE`] of it is left, and the TLS
//! listeners rebind with it, through the same decision as a reconcile ([`super::attempt`]).

use super::daemon::{Daemon, Running};
use crate::web;

impl Daemon {
    /// Renews the certificate in force if it nears its end; the listeners then serve the new one.
    pub(super) async fn renew_tls(&mut self) {
        let Some(Running {
            plan, fingerprint, ..
        }) = &self.current
        else {
            return;
        };
        let plan = plan.clone();
        let config = match web::tls::server_config(&plan.tls, &self.cfg.state_dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot renew the TLS certificate; the current one is served");
                return;
            }
        };
        let renewed = web::tls::fingerprint(&config, &plan.tls, &self.cfg.state_dir);
        if renewed == *fingerprint {
            return;
        }
        let actions = self.decide(&plan, &renewed);
        match self
            .carry_out(&actions, &plan, web::tls::acceptor(config))
            .await
        {
            Ok(()) => {
                if let Some(c) = &mut self.current {
                    c.fingerprint = renewed;
                }
                tracing::info!(
                    listeners = actions.len(),
                    "the TLS listeners serve the renewed certificate"
                );
            }
            Err(e) => tracing::error!(error = %e, "cannot rebind the TLS listeners"),
        }
    }
}
