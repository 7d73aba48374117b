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
