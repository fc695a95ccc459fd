//! One site, many nodes: the application node is the site's source of truth, and each media
//! node keeps a link to it, over which every new version of the site file arrives at once and
//! every outcome goes back.
//!
//! - [`seal`]: the per-site secret, the mutual handshake and the sealed frames;
//! - [`wire`]: the messages and their framing;
//! - [`link`]: both ends of a link, over any byte stream;
//! - [`channel`]: streams the application node opens to a media node over new connections;
//! - [`registry`]: what the application node knows of its media nodes;
//! - [`federation`]: the site's cameras with their nodes and live state, as one node shows them;
//! - [`relay`]: live video of a camera another node ingests, pulled once and fanned out here.
//!
//! ## The threat model
//!
//! - **Trusted:** whoever holds the site secret (`<boot>/site.secret`, installed on every node
//!   by the installer, 0600). The secret is the site's membership: any holder can act as any
//!   node of the site, so it is as precious as an admin password.
//! - **Untrusted:** the network between the nodes, and every machine on it. Such a machine
//!   cannot join (it cannot make the media proof), cannot read a site file (every frame after
//!   the handshake is sealed with keys derived from the secret and both nonces), cannot inject
//!   or replay a version (frames are authenticated and numbered), and cannot pose as the
//!   application node (a media node checks the application node's proof before it proves
//!   anything itself). A man in the middle holding a valid TLS certificate of its own gains
//!   nothing: the link's trust is the secret, not TLS, which only carries it where a layout
//!   has TLS on the web port.
//! - **Tokens.** The secret also keys the site's tokens (`auth::token`, HKDF with a label of
//!   its own): a holder of the secret can mint a session of any user of the site file, which
//!   is one more reason it is as precious as an admin password. A token alone grants nothing
//!   beyond its user's role in the site file in force, and a revoked one is refused on every
//!   linked node within a second (the link carries the revoked ids both ways).
//! - **Out of scope:** a node whose root account is taken (it holds the secret), and denial of
//!   service by the network (a media node cut off keeps running its last good file).
//!
//! The channel is ours rather than TLS with a pre-shared key because rustls offers no external
//! PSK, and certificates would need a site CA that installers would have to manage.

pub mod channel;
pub mod dial;
pub mod federation;
pub mod link;
pub mod registry;
pub mod relay;
pub mod seal;
pub mod wire;

pub use registry::{Registry, Version};
pub use seal::Secret;

#[cfg(test)]
pub(crate) mod tests;
