import Foundation

extension Process {
    /// The exit status once the child has exited, read from `/proc` while it is a zombie; nil while it runs.
    ///
    /// `isRunning` cannot be trusted on Linux: Foundation learns of a child's exit when a socket the child
    /// inherited closes, and any process spawned concurrently (another test's broker or service) inherits
    /// that socket too, so `isRunning` stays true for as long as that other process lives
    /// (swift-corelibs-foundation#4795). The kernel's process state has no such delay.
    var exitCode: Int32? {
        if !isRunning { return terminationStatus }
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else {
            return isRunning ? nil : terminationStatus  // reaped in between
        }
        // Fields after the command name start at field 3 (state); field 52 is the wait status.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.first == "Z" || fields.first == "X" else { return nil }
        guard fields.count > 49, let raw = Int32(fields[49]) else { return 0 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// Waits until the child has exited (see `exitCode`) and returns its status.
    func exited(every interval: Duration = .milliseconds(20)) async throws -> Int32 {
        while true {
            if let code = exitCode { return code }
            try await Task.sleep(for: interval)
        }
    }
}
