import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID, like `UUID()`, from the kernel's CSPRNG read 4 KiB at a time.
    ///
    /// Foundation's `UUID()` on Linux opens, reads and closes `/dev/urandom` for every UUID: three system
    /// calls and a file allocation, ~4 % of lead-ingest's CPU under load (it makes an id for every event
    /// sent without one).
    package static func random() -> UUID {
        RandomBytes.shared.uuid()
    }

    /// The canonical text form in lower case (`8-4-4-4-12` hex digits), as events, messages and responses carry
    /// ids: the same text as `uuidString.lowercased()`, written digit by digit. Foundation's `uuidString` on
    /// Linux formats with snprintf(3); with `lowercased()` on top, its three calls a request were ~2 % of
    /// lead-ingest's CPU in a profile under load.
    package var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var end = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[end] = UInt8(ascii: "-")
                        end += 1
                    }
                    text[end] = Self.hexDigits[Int(byte >> 4)]
                    text[end + 1] = Self.hexDigits[Int(byte & 0x0F)]
                    end += 2
                }
                return end
            }
        }
    }

    /// Reads the canonical text form (`8-4-4-4-12` hex digits, either case), digit by digit: what
    /// `UUID(uuidString:)` accepts, without the sscanf(3) that Foundation parses with on Linux (2 % of lead-scorer's
    /// CPU in a profile: it reads the id of every event it consumes). A unit test compares the two.
    package init?(parsing text: String) {
        var text = text
        let parsed: uuid_t? = text.withUTF8 { utf8 -> uuid_t? in
            guard utf8.count == 36 else { return nil }
            var bytes = [UInt8](repeating: 0, count: 16)
            var position = 0
            for index in 0..<16 {
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard utf8[position] == UInt8(ascii: "-") else { return nil }
                    position += 1
                }
                guard let high = Self.hexValue(utf8[position]), let low = Self.hexValue(utf8[position + 1]) else { return nil }
                bytes[index] = high << 4 | low
                position += 2
            }
            return bytes.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }
        }
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

private final class RandomBytes: Sendable {
    static let shared = RandomBytes()

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096
    }

    private let pool = Mutex(Pool())

    func uuid() -> UUID {
        var value: uuid_t = pool.withLock { pool in
            if pool.used + 16 > pool.bytes.count {
                pool.bytes.withUnsafeMutableBytes(fill)
                pool.used = 0
            }
            defer { pool.used += 16 }
            return pool.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pool.used, as: uuid_t.self) }
        }
        value.6 = (value.6 & 0x0F) | 0x40  // version 4
        value.8 = (value.8 & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(uuid: value)
    }

    private func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        arc4random_buf(buffer.baseAddress!, buffer.count)  // glibc 2.36+ and Darwin: getrandom(2) / the kernel CSPRNG
    }
}
