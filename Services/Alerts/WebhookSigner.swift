import Crypto
import Foundation

/// Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. A secret written as
/// `whsec_<base64>` is used as the decoded bytes (the Standard Webhooks convention); any other secret as its
/// UTF-8 bytes.
struct WebhookSigner: Sendable {
    /// The key bytes (`SymmetricKey` itself is not `Sendable`).
    let keyBytes: Data

    init(secret: String) throws {
        if secret.hasPrefix("whsec_") {
            guard let bytes = Data(base64Encoded: String(secret.dropFirst(6))) else {
                throw WebhookSignerError("ALERT_WEBHOOK_SECRET starts with whsec_ but the rest is not base64")
            }
            keyBytes = bytes
        } else {
            keyBytes = Data(secret.utf8)
        }
    }

    func signature(id: String, timestamp: Int, body: Data) -> String {
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: keyBytes))
        return "v1," + Data(mac).base64EncodedString()
    }
}

struct WebhookSignerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
