/// Encoded frames waiting to be sent together, owned by one connection thread (not thread-safe, not Sendable).
final class FrameBuffer {
    /// Frames beyond this many bytes are sent before more are encoded (bounds the buffer and the delay).
    static let sendAt = 256 * 1024

    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        storage.deallocate()
    }

    /// Appends what `encode` writes at the end: it gets the free room and returns the bytes written, -1 when the
    /// room is too small (the buffer then grows and `encode` runs again) or -2 when it cannot encode at all.
    /// Returns whether something was appended.
    func append(_ encode: (UnsafeMutablePointer<UInt8>, Int) -> Int) -> Bool {
        while true {
            let written = encode(storage + count, capacity - count)
            if written >= 0 {
                precondition(written <= capacity - count, "encoder wrote past the room it was given")
                count += written
                return true
            }
            if written != -1 || capacity >= 1 << 30 { return false }
            resize(to: capacity * 2)
        }
    }

    func withBytes<R>(_ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        body(UnsafePointer(storage), count)
    }

    /// Empties the buffer; a buffer grown past four times its sending size is shrunk back.
    func removeAll() {
        count = 0
        if capacity > 4 * Self.sendAt { resize(to: 64 * 1024) }
    }

    private func resize(to newCapacity: Int) {
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        bigger.update(from: storage, count: count)
        storage.deallocate()
        storage = bigger
        capacity = newCapacity
    }
}
