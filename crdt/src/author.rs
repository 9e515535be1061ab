//! Who wrote a change.
//!
//! Every device writes with an Automerge actor that *begins with its device id*: 32 bytes
//! of ed25519 public key, then a nonce of [`NONCE_LEN`] bytes the writer draws when it
//! opens the document (so two processes of one device never share an actor, and a till
//! restored from an old backup never reuses a sequence number). A change's claimed author
//! can therefore be read from the change itself, before it is applied; the sync layer
//! checks it against the change's signature.
//!
//! Actors of any other length are not bound to a device: the deterministic changes every
//! replica produces alike (a document's genesis, lazily created maps) and history written
//! before changes were signed.

use automerge::ActorId;

use crate::ids::DeviceId;

/// Bytes of an actor after the device id.
pub const NONCE_LEN: usize = 8;

/// The actor `device` writes with, for one opening of a document set.
pub fn device_actor(device: DeviceId, nonce: [u8; NONCE_LEN]) -> ActorId {
    let mut bytes = Vec::with_capacity(32 + NONCE_LEN);
    bytes.extend_from_slice(&device.0);
    bytes.extend_from_slice(&nonce);
    ActorId::from(bytes)
}

/// The device an actor is bound to, if it is a device actor.
pub fn actor_device(actor: &ActorId) -> Option<DeviceId> {
    let bytes = actor.to_bytes();
    if bytes.len() != 32 + NONCE_LEN {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&bytes[..32]);
    Some(DeviceId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_actor_names_its_device_and_other_actors_name_none() {
        let device = DeviceId([9; 32]);
        let actor = device_actor(device, [1; NONCE_LEN]);
        assert_eq!(actor_device(&actor), Some(device));
        assert_ne!(actor, device_actor(device, [2; NONCE_LEN]));
        assert_eq!(actor_device(&ActorId::from(vec![9u8; 16])), None);
        assert_eq!(actor_device(&ActorId::from(vec![9u8; 32])), None);
    }
}
