//! Bit streams for chunk encodings: a growable writer and a bounds-checked
//! reader, both most-significant bit first.

/// Appends bits to a byte vector, most-significant bit first.
///
/// The writer owns the whole chunk buffer, header included, so that the
/// chunk can hand out its bytes without copying.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Unused low-order bits in the last byte of `buf` (0 to 7).
    free: u32,
}

impl BitWriter {
    /// Starts a stream after `header` bytes, which the caller may rewrite
    /// later through [`BitWriter::bytes_mut`].
    pub(crate) fn with_header(header: &[u8], capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(header.len()));
        buf.extend_from_slice(header);
        Self { buf, free: 0 }
    }

    /// Continues an existing stream whose last byte has `free` unused bits.
    pub(crate) fn resume(buf: Vec<u8>, free: u32) -> Self {
        debug_assert!(free < 8);
        Self { buf, free }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Length of the stream in bits, header included.
    #[cfg(test)]
    pub(crate) fn bit_len(&self) -> usize {
        self.buf.len() * 8 - self.free as usize
    }

    /// Writes the low `n` bits of `value` (`n <= 64`).
    #[inline]
    pub(crate) fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        let mut remaining = n;
        while remaining > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = remaining.min(self.free);
            let shift = remaining - take;
            // `take <= 8`, so the mask and the cast cannot lose bits.
            let chunk = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (self.free - take);
            }
            self.free -= take;
            remaining -= take;
        }
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes a signed value as an `n`-bit two's complement field.
    #[inline]
    pub(crate) fn write_signed(&mut self, value: i64, n: u32) {
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        self.write_bits(value as u64 & mask, n);
    }

    /// Writes a zigzag LEB128 varint, one 8-bit group per byte.
    pub(crate) fn write_varint(&mut self, value: i64) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            let low = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                self.write_bits(u64::from(low), 8);
                return;
            }
            self.write_bits(u64::from(low | 0x80), 8);
        }
    }
}

/// The stream ended before a field was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndOfStream;

/// Reads bits from a byte slice, most-significant bit first.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position of the next unread bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], start_byte: usize) -> Self {
        Self {
            data,
            pos: start_byte * 8,
        }
    }

    pub(crate) fn bit_pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// The next 64 bits of the stream, zero-filled past its end.
    #[inline]
    fn window(&self) -> u64 {
        let byte = self.pos / 8;
        let word = match self.data.get(byte..byte + 8) {
            Some(bytes) => {
                let mut array = [0u8; 8];
                array.copy_from_slice(bytes);
                u64::from_be_bytes(array)
            }
            None => {
                let mut array = [0u8; 8];
                let tail = self.data.get(byte..).unwrap_or(&[]);
                array[..tail.len()].copy_from_slice(tail);
                u64::from_be_bytes(array)
            }
        };
        word << (self.pos % 8)
    }

    /// Reads `n <= 64` bits as an unsigned value.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Result<u64, EndOfStream> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Ok(0);
        }
        if self.remaining() < n as usize {
            return Err(EndOfStream);
        }
        // One window holds at least 57 valid bits (64 minus the bit offset).
        if n <= 56 {
            let value = self.window() >> (64 - n);
            self.pos += n as usize;
            Ok(value)
        } else {
            let high = self.window() >> 32;
            self.pos += 32;
            let low = self.window() >> (64 - (n - 32));
            self.pos += (n - 32) as usize;
            Ok((high << (n - 32)) | low)
        }
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, EndOfStream> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads an `n`-bit two's complement field.
    #[inline]
    pub(crate) fn read_signed(&mut self, n: u32) -> Result<i64, EndOfStream> {
        let raw = self.read_bits(n)?;
        let shift = 64 - n;
        Ok(((raw << shift) as i64) >> shift)
    }

    /// Counts leading one bits, stopping after a zero bit or after `max`
    /// ones (in which case no terminating zero is consumed).
    #[inline]
    pub(crate) fn read_unary(&mut self, max: u32) -> Result<u32, EndOfStream> {
        debug_assert!(max < 32);
        let ones = self.window().leading_ones().min(max);
        let consumed = if ones < max { ones + 1 } else { ones };
        if self.remaining() < consumed as usize {
            return Err(EndOfStream);
        }
        self.pos += consumed as usize;
        Ok(ones)
    }

    /// Reads a zigzag LEB128 varint written by [`BitWriter::write_varint`].
    pub(crate) fn read_varint(&mut self) -> Result<Option<i64>, EndOfStream> {
        let mut value = 0u64;
        for group in 0..10 {
            let byte = self.read_bits(8)?;
            if group == 9 && byte > 1 {
                return Ok(None);
            }
            value |= (byte & 0x7f) << (7 * group);
            if byte & 0x80 == 0 {
                return Ok(Some(((value >> 1) as i64) ^ -((value & 1) as i64)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_across_byte_boundaries() {
        let fields: Vec<(u64, u32)> = vec![
            (1, 1),
            (0b101, 3),
            (0x1ff, 9),
            (u64::MAX, 64),
            (0, 7),
            (0x1234_5678_9abc, 48),
            (0x7f, 57),
            (5, 63),
        ];
        let mut writer = BitWriter::with_header(&[0xaa], 0);
        for &(value, n) in &fields {
            writer.write_bits(value, n);
        }
        let total: u32 = fields.iter().map(|&(_, n)| n).sum();
        assert_eq!(writer.bit_len(), 8 + total as usize);
        let mut reader = BitReader::new(writer.bytes(), 1);
        for &(value, n) in &fields {
            assert_eq!(reader.read_bits(n), Ok(value), "field of {n} bits");
        }
        // Only padding is left, less than a byte of it.
        assert!(reader.read_bits(8).is_err());
    }

    #[test]
    fn signed_fields_and_varints_round_trip() {
        let mut writer = BitWriter::default();
        writer.write_signed(-4, 3);
        writer.write_signed(3, 3);
        writer.write_signed(i64::MIN, 64);
        for value in [0, -1, 1, 63, -64, i64::MAX, i64::MIN] {
            writer.write_varint(value);
        }
        writer.write_bit(true);
        let mut reader = BitReader::new(writer.bytes(), 0);
        assert_eq!(reader.read_signed(3), Ok(-4));
        assert_eq!(reader.read_signed(3), Ok(3));
        assert_eq!(reader.read_signed(64), Ok(i64::MIN));
        for value in [0, -1, 1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(reader.read_varint(), Ok(Some(value)));
        }
        assert_eq!(reader.read_bit(), Ok(true));
    }

    #[test]
    fn unary_prefix_stops_at_zero_or_at_max() {
        let mut writer = BitWriter::default();
        writer.write_bits(0b0, 1);
        writer.write_bits(0b110, 3);
        writer.write_bits(0b11111, 5);
        writer.write_bits(0b1, 1);
        let mut reader = BitReader::new(writer.bytes(), 0);
        assert_eq!(reader.read_unary(5), Ok(0));
        assert_eq!(reader.read_unary(5), Ok(2));
        assert_eq!(reader.read_unary(5), Ok(5));
        assert_eq!(reader.read_bit(), Ok(true));
    }

    #[test]
    fn reading_past_the_end_fails() {
        let mut reader = BitReader::new(&[0xff], 0);
        assert_eq!(reader.read_bits(9), Err(EndOfStream));
        assert_eq!(reader.read_unary(9), Err(EndOfStream));
        let mut reader = BitReader::new(&[0x80, 0x80], 0);
        assert_eq!(reader.read_varint(), Err(EndOfStream));
    }
}
