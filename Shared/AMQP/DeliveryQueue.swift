import Synchronization

/// Deliveries from one consumer, handed over from the connection thread. `nextBatch` gives the consumer
/// whatever has arrived (up to a maximum), so batches grow by themselves under load and stay at one
/// message when traffic is light. Bounded by the consumer's prefetch.
package final class DeliveryQueue: Sendable {
    private struct State {
        var items: [Delivery] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
        var interrupted = false
    }

    private let state = Mutex(State())

    package init() {}

    /// Waits for at least one delivery; nil once the queue is finished or interrupted.
    package func nextBatch(max: Int) async -> [Delivery]? {
        while true {
            let batch: [Delivery]?? = state.withLock { state in
                if state.interrupted { return .some(nil) }
                if !state.items.isEmpty {
                    let count = min(max, state.items.count)
                    let batch = Array(state.items.prefix(count))
                    state.items.removeFirst(count)
                    return .some(batch)
                }
                if state.finished { return .some(nil) }
                return nil
            }
            if let batch { return batch }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if !state.items.isEmpty || state.finished || state.interrupted { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Makes a waiting (and every later) `nextBatch` return nil: used on graceful shutdown.
    package func interrupt() {
        let waiter = state.withLock { state in
            state.interrupted = true
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Deliveries waiting to be taken.
    package var count: Int { state.withLock { $0.items.count } }

    func push(_ delivery: Delivery) {
        let waiter = state.withLock { state in
            state.items.append(delivery)
            return state.waiter.take()
        }
        waiter?.resume()
    }

    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            return state.waiter.take()
        }
        waiter?.resume()
    }
}
