//! Gossip encryption (Consul's `encrypt`): every gossip packet is sealed with AES-GCM under
//! the primary key; received packets are opened with any installed key, so keys can be
//! rotated (`keyring -install`, `-use`, `-remove`). A member with a wrong key cannot join.
//! The keyring is kept in `data_dir/serf/local.keyring` across restarts.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use base64::Engine;
use std::sync::{Arc, RwLock};

/// Marks an encrypted packet (Consul's memberlist uses a version byte the same way).
const ENCRYPTED: u8 = 1;

/// Errors about keys.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyError {
    /// Not base64, or not 16 or 32 bytes.
    #[error("Invalid key: {0}")]
    Invalid(String),
    /// The key is not installed.
    #[error("Requested key is not in the keyring.")]
    NotInstalled,
    /// The primary key cannot be removed.
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
}

#[derive(Clone)]
enum Cipher {
    A128(Box<Aes128Gcm>),
    A256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher, KeyError> {
        match key.len() {
            16 => Aes128Gcm::new_from_slice(key)
                .map(|c| Cipher::A128(Box::new(c)))
                .map_err(|e| KeyError::Invalid(e.to_string())),
            32 => Aes256Gcm::new_from_slice(key)
                .map(|c| Cipher::A256(Box::new(c)))
                .map_err(|e| KeyError::Invalid(e.to_string())),
            n => Err(KeyError::Invalid(format!(
                "key must be 16 or 32 bytes, got {n}"
            ))),
        }
    }

    fn seal(&self, nonce: &[u8; 12], plain: &[u8]) -> Option<Vec<u8>> {
        let n = Nonce::from_slice(nonce);
        match self {
            Cipher::A128(c) => c.encrypt(n, plain).ok(),
            Cipher::A256(c) => c.encrypt(n, plain).ok(),
        }
    }

    fn open(&self, nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let n = Nonce::from_slice(nonce);
        match self {
            Cipher::A128(c) => c.decrypt(n, sealed).ok(),
            Cipher::A256(c) => c.decrypt(n, sealed).ok(),
        }
    }
}

/// Decode a base64 key and check its size.
pub fn decode_key(b64: &str) -> Result<Vec<u8>, KeyError> {
    let k = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Cipher::new(&k)?;
    Ok(k)
}

#[derive(Clone)]
struct Inner {
    /// (base64, cipher); the first is the primary.
    keys: Vec<(String, Cipher)>,
}

/// The installed keys, shared by the gossip task and the agent.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<RwLock<Inner>>,
    path: Option<std::path::PathBuf>,
}

impl Keyring {
    /// A keyring with `primary` (base64), restoring extra keys from `path` when present.
    pub fn new(primary: &str, path: Option<std::path::PathBuf>) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        let stored: Vec<String> = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // A keyring file from an earlier run wins (its first key is the primary then in use).
        let list = if stored.is_empty() {
            vec![primary.to_string()]
        } else {
            stored
        };
        for k in list {
            let raw = decode_key(&k)?;
            keys.push((k.trim().to_string(), Cipher::new(&raw)?));
        }
        let kr = Keyring {
            inner: Arc::new(RwLock::new(Inner { keys })),
            path,
        };
        kr.persist();
        Ok(kr)
    }

    fn persist(&self) {
        let Some(p) = &self.path else { return };
        let keys: Vec<String> = self.list();
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Ok(b) = serde_json::to_vec(&keys) {
            let tmp = p.with_extension("tmp");
            let _ = std::fs::write(&tmp, b).and_then(|_| std::fs::rename(&tmp, p));
        }
    }

    /// Installed keys, primary first.
    pub fn list(&self) -> Vec<String> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The primary key.
    pub fn primary(&self) -> String {
        self.list().into_iter().next().unwrap_or_default()
    }

    /// Install a key (not yet used for sending).
    pub fn install(&self, b64: &str) -> Result<(), KeyError> {
        let raw = decode_key(b64)?;
        {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if !g.keys.iter().any(|(k, _)| k == b64.trim()) {
                g.keys.push((b64.trim().to_string(), Cipher::new(&raw)?));
            }
        }
        self.persist();
        Ok(())
    }

    /// Make an installed key the primary.
    pub fn use_key(&self, b64: &str) -> Result<(), KeyError> {
        {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            let i = g
                .keys
                .iter()
                .position(|(k, _)| k == b64.trim())
                .ok_or(KeyError::NotInstalled)?;
            let k = g.keys.remove(i);
            g.keys.insert(0, k);
        }
        self.persist();
        Ok(())
    }

    /// Remove a key that is not the primary.
    pub fn remove(&self, b64: &str) -> Result<(), KeyError> {
        {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            let i = g
                .keys
                .iter()
                .position(|(k, _)| k == b64.trim())
                .ok_or(KeyError::NotInstalled)?;
            if i == 0 {
                return Err(KeyError::RemovePrimary);
            }
            g.keys.remove(i);
        }
        self.persist();
        Ok(())
    }

    /// Seal a packet with the primary key.
    pub fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let (_, c) = g.keys.first()?;
        let nonce: [u8; 12] = rand::random();
        let sealed = c.seal(&nonce, plain)?;
        let mut out = Vec::with_capacity(1 + 12 + sealed.len());
        out.push(ENCRYPTED);
        out.extend_from_slice(&nonce);
        out.extend(sealed);
        Some(out)
    }

    /// Open a packet with any installed key.
    pub fn open(&self, pkt: &[u8]) -> Option<Vec<u8>> {
        if pkt.len() < 1 + 12 + 16 || pkt[0] != ENCRYPTED {
            return None;
        }
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.keys
            .iter()
            .find_map(|(_, c)| c.open(&pkt[1..13], &pkt[13..]))
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.list().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "cg8StVXbQJ0gPvMd9o7yrg==";

    #[test]
    fn seal_open_and_rotate() {
        let a = Keyring::new(K1, None).unwrap();
        let b = Keyring::new(K1, None).unwrap();
        let p = a.seal(b"hello").unwrap();
        assert_eq!(b.open(&p).unwrap(), b"hello");
        let other = Keyring::new(
            &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            None,
        )
        .unwrap();
        assert!(other.open(&p).is_none(), "a wrong key cannot read");
        let k2 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        b.install(&k2).unwrap();
        a.install(&k2).unwrap();
        a.use_key(&k2).unwrap();
        assert_eq!(
            b.open(&a.seal(b"x").unwrap()).unwrap(),
            b"x",
            "installed keys decrypt"
        );
        assert_eq!(a.remove(&k2), Err(KeyError::RemovePrimary));
        a.remove(K1).unwrap();
        assert_eq!(a.list(), vec![k2]);
        assert!(decode_key("short").is_err());
    }
}
