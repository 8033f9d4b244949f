//! Contender (1): the raw rdkafka consume → produce loop. Every message's
//! payload and key go out unchanged; the at-least-once loop around it is
//! [`crate::at_least_once`]. This is the floor for weir's passthrough
//! pipeline (contender 3): the cost of Kafka I/O alone.

/// The payload, unchanged.
pub fn map<'a>(payload: &'a [u8], _scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    Some(payload)
}
