import Foundation

/// Normal forms of contact details, used to recognise one person across interactions (CONTRACT section 7).
package enum ContactNormalizer {
    /// Addresses people type when they do not want to give one: they never create or match a lead.
    static let placeholderEmails: Set<String> = [
        "test@test.com", "test@example.com", "a@a.com", "abc@abc.com", "email@email.com", "no@email.com",
        "none@none.com", "noemail@noemail.com", "null@null.com", "user@user.com", "asdf@asdf.com",
        "example@example.com", "test@gmail.com", "xyz@xyz.com",
    ]
    static let placeholderWords: Set<String> = ["null", "none", "n/a", "na", "nil", "undefined", "-", "test", "unknown"]
    static let placeholderPhones: Set<String> = ["1234567", "12345678", "123456789", "1234567890", "0123456789", "9876543210"]

    /// Trimmed and lower-cased, or nil for a placeholder.
    package static func email(_ raw: String?) -> String? {
        guard let raw else { return nil }
        let email = raw.trimmed.lowercased()
        guard !email.isEmpty, !placeholderWords.contains(email), !placeholderEmails.contains(email),
            looksLikeEmail(email)
        else { return nil }
        return email
    }

    /// Its digits with a leading `+` kept, or nil for a placeholder or an invalid number.
    package static func phone(_ raw: String?) -> String? {
        guard let raw, let digits = phoneDigits(raw) else { return nil }
        let bare = digits.hasPrefix("+") ? String(digits.dropFirst()) : digits
        guard !placeholderPhones.contains(bare), Set(bare).count > 1 else { return nil }
        // A number whose national part is all one digit (+91 0000000000) is a placeholder too.
        guard Set(bare.suffix(7)).count > 1 else { return nil }
        return digits
    }

    /// `+` and 7 to 15 digits once spaces, dashes, dots and brackets are removed; nil otherwise.
    package static func phoneDigits(_ raw: String) -> String? {
        var text = Substring(raw.trimmed)
        var result = ""
        if text.first == "+" {
            result = "+"
            text = text.dropFirst()
        }
        var count = 0
        for character in text {
            switch character {
            case "0"..."9":
                result.append(character)
                count += 1
            case " ", "-", ".", "(", ")", "[", "]":
                continue
            default:
                return nil
            }
        }
        return (7...15).contains(count) ? result : nil
    }

    /// A plausible address: one `@`, something before it, a dotted domain after it, no spaces.
    package static func looksLikeEmail(_ text: String) -> Bool {
        guard text.utf8.count <= 254 else { return false }
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return looksLikeASCIIEmail(text.utf8) }
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else { return false }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let domain = parts[1]
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }), let tld = labels.last, tld.count >= 2 else {
            return false
        }
        return !domain.hasPrefix("-")
    }

    /// The same rules on ASCII bytes, where a byte is a character (no grapheme breaking: this runs for every
    /// event with an email, on ingest and in the scorer).
    private static func looksLikeASCIIEmail(_ bytes: String.UTF8View) -> Bool {
        // ASCII whitespace and newlines: tab, line feed, vertical tab, form feed, carriage return, space.
        guard !bytes.contains(where: { (0x09...0x0D).contains($0) || $0 == 0x20 }) else { return false }
        let parts = bytes.split(separator: UInt8(ascii: "@"), omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let domain = parts[1]
        let labels = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }), let tld = labels.last, tld.count >= 2 else {
            return false
        }
        return domain.first != UInt8(ascii: "-")
    }
}
