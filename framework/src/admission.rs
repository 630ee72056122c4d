//! Admission: how many sockets the server holds, in all, per IP address,
//! and still in their handshake.
//!
//! The accept loop asks [`Admission::admit`] for every socket. A yes is a
//! [`Ticket`], held for the socket's whole life (the session and its
//! writer both end before the connection drops it), and a
//! [`HandshakeTicket`], given back once the handshake is over. Dropping
//! either frees its places.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The bounds admission enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionLimits {
    /// Sockets in all.
    pub(crate) connections: usize,
    /// Sockets per IP address.
    pub(crate) per_ip: usize,
    /// Sockets still in their handshake.
    pub(crate) handshakes: usize,
}

/// Why a socket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` sockets are open.
    Server,
    /// `max_connections_per_ip` sockets are open from this address.
    Address,
    /// `max_pending_handshakes` sockets are in their handshake.
    Handshakes,
}

impl Refusal {
    /// The refusal's place among the server's counts: the server's bound,
    /// the address's, the handshakes'.
    pub(crate) fn index(self) -> usize {
        match self {
            Refusal::Server => 0,
            Refusal::Address => 1,
            Refusal::Handshakes => 2,
        }
    }

    /// The reason given in the close frame.
    pub(crate) fn reason(self, limits: AdmissionLimits) -> String {
        match self {
            Refusal::Server => {
                format!("the server is full ({} connections)", limits.connections)
            }
            Refusal::Address => {
                format!("too many connections from your address ({})", limits.per_ip)
            }
            Refusal::Handshakes => format!(
                "too many connections are in their handshake ({}); try again",
                limits.handshakes
            ),
        }
    }
}

/// The places taken, by kind.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: AdmissionLimits,
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    /// Sockets per address, for the addresses that hold any.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits,
            connections: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            per_ip: Mutex::default(),
        }
    }

    pub(crate) fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// Places for a socket from `ip`: one among all, one of its address's,
    /// and one among the handshakes.
    ///
    /// # Errors
    ///
    /// The first bound that is reached.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<(Ticket, HandshakeTicket), Refusal> {
        if !claim(&self.connections, self.limits.connections) {
            return Err(Refusal::Server);
        }
        // From here, dropping the ticket gives back what it holds.
        let mut ticket = Ticket {
            admission: Arc::clone(self),
            ip: None,
        };
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let held = per_ip.entry(ip).or_insert(0);
            if *held >= self.limits.per_ip {
                return Err(Refusal::Address);
            }
            *held += 1;
        }
        ticket.ip = Some(ip);
        if !claim(&self.handshakes, self.limits.handshakes) {
            return Err(Refusal::Handshakes);
        }
        let handshake = HandshakeTicket {
            admission: Arc::clone(self),
        };
        Ok((ticket, handshake))
    }

    /// Sockets held now.
    #[cfg(test)]
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Takes one of `max` places of `counter`, if one is free.
fn claim(counter: &AtomicUsize, max: usize) -> bool {
    if counter.fetch_add(1, Ordering::SeqCst) >= max {
        counter.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// A socket's places among all and among its address's; freed on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    /// Set once the address's place is taken.
    ip: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let admission = &self.admission;
        if let Some(ip) = self.ip {
            let mut per_ip = admission.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = per_ip.get_mut(&ip) {
                *held -= 1;
                if *held == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        admission.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A socket's place among those in their handshake; freed on drop.
#[derive(Debug)]
pub(crate) struct HandshakeTicket {
    admission: Arc<Admission>,
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        self.admission.handshakes.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(connections: usize, per_ip: usize, handshakes: usize) -> Arc<Admission> {
        Arc::new(Admission::new(AdmissionLimits {
            connections,
            per_ip,
            handshakes,
        }))
    }

    #[test]
    fn each_bound_refuses_and_dropping_frees() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let admission = admission(3, 2, 2);
        let (first, shake1) = admission.admit(a).unwrap();
        let (_second, shake2) = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::Address);
        assert_eq!(admission.admit(b).unwrap_err(), Refusal::Handshakes);
        drop((shake1, shake2));
        let (_third, _shake3) = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).unwrap_err(), Refusal::Server);
        assert_eq!(admission.connections(), 3);
        drop(first);
        assert_eq!(admission.connections(), 2);
        assert!(admission.admit(a).is_ok(), "the address's place came back");
        assert_eq!(admission.connections(), 2, "and went again with its ticket");
        let per_ip = admission.per_ip.lock().unwrap();
        assert_eq!(per_ip.get(&a), Some(&1));
    }
}
