//! What the reader's connections have in common: a viewer protocol fed bytes as they arrive.

/// A viewer protocol, fed the bytes of one connection as they arrive.
pub trait Protocol {
    /// What to send once connected.
    fn hello(&mut self) -> Vec<u8>;
    /// Consumes received bytes: pushes the timestamp (ms) of each video frame to `frames`, and
    /// what must be sent back to `reply`.
    fn feed(
        &mut self,
        data: &[u8],
        frames: &mut Vec<u32>,
        reply: &mut Vec<u8>,
    ) -> Result<(), String>;
}

/// Whether a video message body (FLV VIDEODATA) starting with `head` is a coded frame, not a
/// sequence header or end of sequence: classic AVC (`AVCPacketType` 1) or Enhanced RTMP
/// (`PacketType` CodedFrames or CodedFramesX).
pub fn video_frame(head: &[u8]) -> bool {
    match head {
        [b0, _, ..] if b0 & 0x80 != 0 => matches!(b0 & 0x0f, 1 | 3),
        [_, b1, ..] => *b1 == 1,
        _ => false,
    }
}
