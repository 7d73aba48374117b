import Crypto
import Foundation
import LeadService

/// The dashboard's sign-in: a cookie `<expires>.<nonce>.<HMAC>` keyed by the admin token, so there is no
/// server-side session table, every instance accepts it, and changing `ADMIN_TOKEN` signs everyone out.
/// Forms carry a CSRF token derived from the cookie (on top of `SameSite=Strict`).
struct AdminSession: Sendable {
    static let cookieName = "lead_admin"
    static let lifetime: TimeInterval = 12 * 3600

    private let keyBytes: [UInt8]
    private let token: String

    init(token: String) {
        self.token = token
        keyBytes = Array(SHA256.hash(data: Data("lead-admin-session:\(token)".utf8)))
    }

    func tokenMatches(_ candidate: String) -> Bool {
        constantTimeEquals(candidate, token)
    }

    /// A new cookie value, valid for `lifetime`.
    func issue(now: Date = Date()) -> String {
        let expires = Int(now.timeIntervalSince1970 + Self.lifetime)
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let payload = "\(expires).\(nonce)"
        return "\(payload).\(sign(payload))"
    }

    /// Whether `value` is a cookie this token issued and it has not expired.
    func isValid(_ value: String?, now: Date = Date()) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ".")
        guard parts.count == 3, let expires = Int(parts[0]) else { return false }
        let payload = "\(parts[0]).\(parts[1])"
        guard constantTimeEquals(String(parts[2]), sign(payload)) else { return false }
        return Double(expires) > now.timeIntervalSince1970
    }

    /// The CSRF token forms of this session must carry.
    func csrf(for cookie: String) -> String {
        sign("csrf:\(cookie)")
    }

    private func sign(_ text: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: keyBytes))
        return Data(mac).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// `application/x-www-form-urlencoded` bodies (the dashboard's forms).
enum FormBody {
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            guard let name = parts.first else { continue }
            fields[decode(name)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
