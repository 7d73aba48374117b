import Dispatch
import HTTPTypes
import Hummingbird
import Metrics
import Synchronization

/// Hummingbird's `MetricsMiddleware` with the same metrics (`hb_requests`, `hb_request_errors`,
/// `http_server_request_duration`, `http_server_active_requests`), recorded when the response is made rather
/// than once its body is written.
///
/// Hummingbird's version wraps every body in a post-write closure, and a closure-backed body loses the
/// response writer's single-buffer path: head and body then go out as two flushes, two hand-offs to the event
/// loop and two `write(2)` calls (seen with strace under wrk), where one `writev(2)` does. For a service whose
/// responses are small in-memory bodies (lead-ingest) the two instants are the same to the microsecond; a
/// streamed body (an export) would be timed without its streaming, so lead-admin keeps Hummingbird's.
package struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let cache = Cache()

    package init() {}

    package func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let active = cache.active(request.method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            let metrics = cache.endpoint(.init(route: context.endpointPath ?? "Unknown", method: request.method, status: response.status))
            metrics.requests.increment()
            metrics.duration.recordNanoseconds(DispatchTime.now().uptimeNanoseconds - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let metrics = cache.endpoint(.init(route: context.endpointPath ?? "NotFound", method: request.method, status: status))
            metrics.requests.increment()
            metrics.errors.increment()
            throw error
        }
    }

    /// The metric objects per method and per route, method and status, made once each.
    private final class Cache: Sendable {
        struct Key: Hashable {
            var route: String
            var method: HTTPRequest.Method
            var status: HTTPResponse.Status
        }

        struct Endpoint: Sendable {
            let requests: Counter
            let errors: Counter
            let duration: Metrics.Timer

            init(_ key: Key) {
                let dimensions = [
                    ("http.route", key.route), ("http.request.method", key.method.rawValue),
                    ("http.response.status_code", String(key.status.code)),
                ]
                requests = Counter(label: "hb.requests", dimensions: dimensions)
                duration = Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
                errors = Counter(
                    label: "hb.request.errors",
                    dimensions: [("http.route", key.route), ("http.request.method", key.method.rawValue), ("error.type", String(key.status.code))]
                )
            }
        }

        private let methods = Mutex<[HTTPRequest.Method: Meter]>([:])
        private let endpoints = Mutex<[Key: Endpoint]>([:])

        func active(_ method: HTTPRequest.Method) -> Meter {
            methods.withLock { methods in
                if let meter = methods[method] { return meter }
                let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)])
                methods[method] = meter
                return meter
            }
        }

        func endpoint(_ key: Key) -> Endpoint {
            endpoints.withLock { endpoints in
                if let metrics = endpoints[key] { return metrics }
                let metrics = Endpoint(key)
                endpoints[key] = metrics
                return metrics
            }
        }
    }
}
