import Synchronization

/// A one-shot gate: services that need the database schema wait on it until start-up work is done.
package final class StartGate: Sendable {
    private struct State {
        var outcome: Bool?
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    private let state = Mutex(State())

    package init() {}

    /// Opens the gate (`true`) or closes it for good (`false`: start-up failed or the service is stopping).
    package func resolve(_ outcome: Bool) {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard state.outcome == nil else { return [] }
            state.outcome = outcome
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
    }

    package var isOpen: Bool { state.withLock { $0.outcome == true } }

    /// Waits until the gate is resolved; returns whether it opened.
    package func wait() async -> Bool {
        await withCheckedContinuation { continuation in
            let outcome = state.withLock { state -> Bool? in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }
}
