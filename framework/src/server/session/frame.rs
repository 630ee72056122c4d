//! The handling of one frame: decoded, answered when it is a system
//! frame, run through the message service when it is a message, and the
//! outcome sent.

use std::sync::atomic::Ordering;

use tracing::Instrument;

use super::{Next, SessionDriver};
use crate::codec::Codec;
use crate::connection::SendError;
use crate::dispatch::Outcome;
use crate::monitor::Event;
use crate::protocol::Message;
use crate::transport::{FrameRead, Inbound};
use crate::wire::{CloseCode, EncodedFrame, ErrorCode, ErrorFrame, Frame, LENGTH_PREFIX_LEN};

impl<M: Message, C: Codec, R: FrameRead> SessionDriver<M, C, R> {
    /// Handles one frame: decodes it, answers system frames, and runs a
    /// message through the message service, then sends what its outcome
    /// says.
    pub(super) async fn handle_frame(&self, frame: Inbound) -> Next {
        let connection = self.connection();
        connection.record_in(frame.payload.len() + LENGTH_PREFIX_LEN);
        let (message, stamp) = match C::decode::<Frame<M>>(&frame.payload) {
            Ok(Frame::App(message)) => (message, None),
            Ok(Frame::Stamped {
                sent_at_us,
                message,
            }) => (message, Some(sent_at_us)),
            Ok(Frame::Ping { nonce }) => {
                self.send_system(&Frame::Pong { nonce }, true);
                return Next::Read;
            }
            Ok(Frame::Pong { .. }) => return Next::Read,
            Ok(Frame::Close(_)) => return Next::End,
            Ok(Frame::Hello(_) | Frame::Welcome(_) | Frame::Error(_)) => {
                let message =
                    "only messages, pings, pongs and close frames are expected after the handshake";
                return self.protocol_error(ErrorCode::UnexpectedFrame, message.into());
            }
            Err(error) => return self.protocol_error(ErrorCode::Undecodable, error.to_string()),
        };
        let variant = message.variant();
        if !variant.direction.client_sends() {
            let name = M::PROTOCOL.name;
            let message = format!(
                "`{name}::{}` is sent by the server, not by clients",
                variant.name
            );
            return self.protocol_error(ErrorCode::NotAllowed, message);
        }
        if variant.retired {
            // An older client may still send it: an answer, not a protocol
            // error that would count towards closing its connection.
            let message = format!(
                "`{}::{}` is retired: this server no longer handles it",
                M::PROTOCOL.name,
                variant.name
            );
            self.send_error(ErrorCode::NotAllowed, message);
            return Next::Read;
        }
        connection.record_message();
        // A span per handler call, naming its message, at debug level and
        // its own target (as tower-http's request spans): creating a span
        // costs a few hundred nanoseconds per message with a formatting
        // subscriber, which the session span, made once, does not.
        let span =
            tracing::debug_span!(target: "gamewire::handler", "handler", variant = variant.name);
        let outcome = self
            .runtime
            .messages
            .process(&self.session, message, frame.read_at, stamp)
            .instrument(span);
        match outcome.await {
            Outcome::Reply(reply) => match EncodedFrame::encode::<C, _>(&Frame::App(&reply)) {
                Ok(bytes) => {
                    match connection.send_variant(bytes, reply.variant()) {
                        Ok(()) => {}
                        // The client would wait for ever for a reply it
                        // cannot read: it is told instead.
                        Err(error @ SendError::UnknownToClient { .. }) => {
                            self.send_error(ErrorCode::HandlerFailed, error.to_string());
                        }
                        Err(error) => {
                            tracing::debug!(user_id = connection.user_id, %error, "reply not sent");
                        }
                    }
                }
                // Never dropped in silence: the client would wait for ever.
                Err(error) => {
                    tracing::warn!(user_id = connection.user_id, %error, "reply not encoded");
                    let message = format!("the reply could not be sent: {error}");
                    self.send_error(ErrorCode::HandlerFailed, message);
                }
            },
            Outcome::Done | Outcome::Stopped => {}
            Outcome::Failed(error) => self.send_error(error.code, error.to_string()),
        }
        Next::Read
    }

    /// Answers a bad frame with an error frame; closes the connection after
    /// `max_protocol_errors` of them.
    fn protocol_error(&self, code: ErrorCode, message: String) -> Next {
        let connection = self.connection();
        self.runtime.shared.monitor.count(Event::ProtocolError);
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(user_id = connection.user_id, %message, "protocol error");
        self.send_error(code, message);
        if errors < self.runtime.config.max_protocol_errors {
            return Next::Read;
        }
        let reason = format!("{errors} protocol errors");
        connection.close(CloseCode::TooManyErrors, &reason, true);
        Next::End
    }

    pub(super) fn send_error(&self, code: ErrorCode, message: String) {
        let code = code.as_u16();
        self.runtime.shared.monitor.count_error_frame(code);
        self.send_system(&Frame::Error(ErrorFrame { code, message }), false);
    }

    fn send_system(&self, frame: &Frame<()>, droppable: bool) {
        if let Ok(bytes) = EncodedFrame::encode::<C, _>(frame) {
            let _ = self.connection().send_frame(bytes, droppable);
        }
    }
}
