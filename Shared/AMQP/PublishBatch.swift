import Synchronization

/// Who waits for a publish's confirm: one `publish` call, or one message of a `PublishBatch`.
enum ConfirmWaiter: Sendable {
    case single(CheckedContinuation<Void, any Error>)
    case batch(PublishBatch, index: Int)

    func resolve(_ error: AMQPError?) {
        switch self {
        case .single(let continuation):
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        case .batch(let batch, let index):
            batch.resolve(index, error)
        }
    }
}

/// Messages handed to the connection together, in order (they reach the broker in that order), whose
/// confirms are awaited together: `AMQPConnection.publishInOrder`.
package final class PublishBatch: Sendable {
    private struct State {
        var results: [AMQPError?]
        var remaining: Int
        var waiter: CheckedContinuation<[AMQPError?], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func resolve(_ index: Int, _ error: AMQPError?) {
        let waiter = state.withLock { state -> CheckedContinuation<[AMQPError?], Never>? in
            state.results[index] = error
            state.remaining -= 1
            return state.remaining == 0 ? state.waiter.take() : nil
        }
        waiter?.resume(returning: state.withLock { $0.results })
    }

    /// Waits until the broker has answered for every message: `nil` where it confirmed, the error otherwise.
    package func confirmations() async -> [AMQPError?] {
        await withCheckedContinuation { continuation in
            let done: [AMQPError?]? = state.withLock { state in
                if state.remaining == 0 { return state.results }
                state.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}
