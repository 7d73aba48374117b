import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LeadCore
import LeadService
import Logging
import NIOCore
import PostgresNIO

/// What browsers may do with lead-ingest: publishable keys (`INGEST_PUBLIC_KEYS`) that can only post
/// interactions and read their own session's prompt, CORS for `INGEST_ALLOWED_ORIGINS`, the snippet at
/// `/sdk/lead-capture.js` and, with `INGEST_DEMO=true`, the demo marketplace page at `/demo`.
struct WebKitConfiguration: Sendable {
    var publicKeys: Set<String>
    /// Origins (scheme://host[:port]) allowed to call with a public key; the ingest's own origin always is.
    var allowedOrigins: Set<String>
    /// Signs session tokens (`INGEST_SESSION_SECRET`); every ingest instance needs the same one.
    var sessionSecret: String
    var demo: Bool

    init(environment env: EnvironmentReader, secretKeys: Set<String>) throws {
        publicKeys = Set(env.list("INGEST_PUBLIC_KEYS", default: ["pk-dev-public"]))
        allowedOrigins = Set(env.list("INGEST_ALLOWED_ORIGINS", default: []).map { $0.lowercased() })
        sessionSecret = env.string("INGEST_SESSION_SECRET", default: "dev-session-secret")
        demo = env.string("INGEST_DEMO", default: "false") == "true"
        guard publicKeys.isDisjoint(with: secretKeys) else {
            throw ConfigurationError("a key cannot be both in INGEST_API_KEYS (secret) and INGEST_PUBLIC_KEYS (publishable)")
        }
    }
}

/// Who is calling: a secret key (the web tier's backend) or a publishable key (a browser).
enum IngestCredential: Sendable {
    case secret
    case publishable
}

struct IngestAuthenticator: Sendable {
    let secretKeys: Set<String>
    let web: WebKitConfiguration

    /// The credential presented as `Authorization: Bearer`, `X-API-Key` or (publishable keys only, since
    /// `sendBeacon` cannot set headers) the `key` query parameter. A publishable key from a browser must come
    /// from an allowed origin.
    func authenticate(_ request: Request) throws(APIError) -> IngestCredential {
        var presented: String?
        if let authorization = request.headers.value(.authorization) {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented = parts[1].trimmed }
        }
        if presented == nil, let key = request.headers.value(.apiKey) { presented = key }
        var fromQuery = false
        if presented == nil, let key = request.uri.queryParameters["key"] {
            presented = String(key)
            fromQuery = true
        }
        guard let presented, !presented.isEmpty else { throw APIError.unauthorized }
        if !fromQuery, Self.matches(presented, secretKeys) { return .secret }
        if Self.matches(presented, web.publicKeys) {
            if let origin = request.headers.value(.origin), !isAllowed(origin: origin, request: request) {
                throw APIError(.forbidden, code: "origin_not_allowed", "this origin may not use the key (INGEST_ALLOWED_ORIGINS)")
            }
            return .publishable
        }
        throw APIError.unauthorized
    }

    func isAllowed(origin: String, request: Request) -> Bool {
        let origin = origin.lowercased()
        if web.allowedOrigins.contains(origin) { return true }
        // The ingest's own pages (the demo) are same-origin.
        guard let host = request.head.authority?.lowercased() else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    private static func matches(_ presented: String, _ keys: Set<String>) -> Bool {
        var matched = false
        for key in keys where constantTimeEquals(key, presented) { matched = true }
        return matched
    }
}

/// A session's proof of ownership: HMAC(secret, session id), handed to the browser that posted the
/// session's events and required to read its prompt, so knowing a session id is not enough.
struct SessionTokens: Sendable {
    private let key: [UInt8]

    init(secret: String) {
        key = Array(SHA256.hash(data: Data("lead-ingest-session:\(secret)".utf8)))
    }

    func token(for sessionID: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(sessionID.utf8), using: SymmetricKey(data: key))
        return String(
            Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").prefix(32)
        )
    }

    func isValid(_ token: String, for sessionID: String) -> Bool {
        constantTimeEquals(token, self.token(for: sessionID))
    }
}

/// CORS for browsers on allowed origins: preflights answered, responses marked readable.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: IngestAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers.value(.origin), authenticator.isAllowed(origin: origin, request: request) else {
            return try await next(request, context)
        }
        if request.method == .options {
            return Response(
                status: .noContent,
                headers: [
                    .accessControlAllowOrigin: origin, .vary: "Origin",
                    .accessControlAllowMethods: "GET, POST, OPTIONS",
                    .accessControlAllowHeaders: "Content-Type, Authorization, X-API-Key",
                    .accessControlMaxAge: "600",
                ]
            )
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        response.headers[.accessControlExposeHeaders] = "Retry-After"
        return response
    }
}

/// `/sdk/lead-capture.js`, `/demo`, and `GET /v1/sessions/{id}/prompt` for browsers.
struct WebRoutes: Sendable {
    let authenticator: IngestAuthenticator
    let tokens: SessionTokens
    let client: PostgresClient
    let script: String
    let demoPage: String?

    init(authenticator: IngestAuthenticator, tokens: SessionTokens, client: PostgresClient) {
        self.authenticator = authenticator
        self.tokens = tokens
        self.client = client
        script = Self.compact(String(decoding: PackageResources.lead_capture_js, as: UTF8.self))
        demoPage = authenticator.web.demo
            ? String(decoding: PackageResources.demo_html, as: UTF8.self)
                .replacingOccurrences(of: "{{PUBLIC_KEY}}", with: authenticator.web.publicKeys.sorted().first ?? "")
            : nil
    }

    /// Indentation and whole-line `//` comments removed: what is served stays well under 8 KB while the
    /// file in the repository stays readable.
    static func compact(_ source: String) -> String {
        source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("//") }.joined(separator: "\n") + "\n"
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        let script = self.script
        router.get("sdk/lead-capture.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/javascript; charset=utf-8", .cacheControl: "public, max-age=300", .accessControlAllowOrigin: "*"],
                body: .init(byteBuffer: ByteBuffer(string: script))
            )
        }
        if let demoPage {
            router.get("demo") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: demoPage)))
            }
        }
        router.get("v1/sessions/{id}/prompt", use: prompt)
        router.on("v1/sessions/{id}/prompt", method: .options) { _, _ in Response(status: .noContent) }
        router.on("v1/interactions", method: .options) { _, _ in Response(status: .noContent) }
        router.on("v1/interactions/batch", method: .options) { _, _ in Response(status: .noContent) }
    }

    /// The session's latest decision. A publishable key must bring the session's token; the answer holds
    /// nothing about the visitor beyond which contact fields are still missing.
    @Sendable func prompt(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let credential = try authenticator.authenticate(request)
        let sessionID = try context.parameters.require("id")
        if credential == .publishable {
            guard let token = request.uri.queryParameters["token"], tokens.isValid(String(token), for: sessionID) else {
                throw APIError(.forbidden, code: "invalid_session_token", "the session token does not match this session")
            }
        }
        // The open (unanswered) prompt, not just the latest decision: an interaction right after a prompt
        // decides "no new prompt" but must not hide the one the page has not shown yet.
        let rows = try await client.query(
            """
            SELECT p.id, s.variant, s.missing_fields FROM conversion_sessions s
            LEFT JOIN LATERAL (
                SELECT id FROM conversion_prompts WHERE session_id = s.session_id AND status = 'open' ORDER BY created_at DESC LIMIT 1
            ) p ON NOT s.contact_known
            WHERE s.session_id = \(sessionID)
            """,
            logger: context.logger
        )
        for try await (promptID, variant, fields) in rows.decode((UUID?, String, [String]).self) {
            return .json(.object([
                "session_id": .string(sessionID), "prompt": .bool(promptID != nil),
                "prompt_id": promptID.map { .string($0.lowercasedString) } ?? .null,
                "variant": .string(variant), "fields": .array(fields.map { .string($0) }),
            ]))
        }
        throw APIError(.notFound, code: "not_found", "no decision for this session yet")
    }
}
