import Foundation

/// The project's timestamp convention: RFC 3339, UTC, milliseconds on output; any RFC 3339 form on input.
package enum JSONCoding {
    /// For `Codable` API payloads: dates as `formatTimestamp` writes them.
    package static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTimestamp(date))
        }
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    package static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 timestamp")
            }
            return date
        }
        return decoder
    }

    /// Parses `2026-11-26T09:30:00Z`, with or without fractional seconds, with `Z` or a `±hh:mm` offset.
    package static func parseTimestamp(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { bytes -> Date? in
            guard bytes.count >= 20, bytes.count <= 40 else { return nil }
            func digits(_ start: Int, _ count: Int) -> Int? {
                var value = 0
                for index in start..<(start + count) {
                    let byte = bytes[index]
                    guard byte >= 0x30, byte <= 0x39 else { return nil }
                    value = value * 10 + Int(byte - 0x30)
                }
                return value
            }
            guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"), let month = digits(5, 2),
                bytes[7] == UInt8(ascii: "-"), let day = digits(8, 2),
                bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
                let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
                bytes[16] == UInt8(ascii: ":"), let second = digits(17, 2)
            else { return nil }
            var index = 19
            var fraction = 0.0
            if bytes[index] == UInt8(ascii: ".") {
                index += 1
                var scale = 0.1
                let start = index
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                    fraction += Double(bytes[index] - 0x30) * scale
                    scale /= 10
                    index += 1
                }
                guard index > start, index - start <= 9 else { return nil }
            }
            guard index < bytes.count else { return nil }
            var offsetSeconds = 0
            switch bytes[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard index + 6 == bytes.count, let hours = digits(index + 1, 2), bytes[index + 3] == UInt8(ascii: ":"),
                    let minutes = digits(index + 4, 2), hours < 24, minutes < 60
                else { return nil }
                offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
                index += 6
            default:
                return nil
            }
            guard index == bytes.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
                second < 61
            else { return nil }
            var parts = tm()
            parts.tm_year = Int32(year - 1900)
            parts.tm_mon = Int32(month - 1)
            parts.tm_mday = Int32(day)
            parts.tm_hour = Int32(hour)
            parts.tm_min = Int32(minute)
            parts.tm_sec = Int32(min(second, 59))
            let seconds = timegm(&parts)
            // timegm normalizes impossible dates (February 30th): refuse them.
            guard parts.tm_mday == Int32(day), parts.tm_mon == Int32(month - 1) else { return nil }
            return Date(timeIntervalSince1970: Double(seconds - offsetSeconds) + fraction)
        }
    }

    /// `2026-11-26T09:30:00.123Z`.
    package static func formatTimestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var milliseconds = Int(((interval - Double(seconds)) * 1000).rounded())
        if milliseconds == 1000 {
            seconds += 1
            milliseconds = 0
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else {
            return "\(year)-\(twoDigits(parts.tm_mon + 1))-\(twoDigits(parts.tm_mday))T\(twoDigits(parts.tm_hour)):"
                + "\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)).\(String(milliseconds + 1000).dropFirst())Z"
        }
        // yyyy-MM-ddTHH:mm:ss.SSSZ written digit by digit: this runs twice for every event lead-ingest accepts.
        return String(unsafeUninitializedCapacity: 24) { text in
            func put(_ value: Int, width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(year, width: 4, at: 0)
            text[4] = UInt8(ascii: "-")
            put(Int(parts.tm_mon) + 1, width: 2, at: 5)
            text[7] = UInt8(ascii: "-")
            put(Int(parts.tm_mday), width: 2, at: 8)
            text[10] = UInt8(ascii: "T")
            put(Int(parts.tm_hour), width: 2, at: 11)
            text[13] = UInt8(ascii: ":")
            put(Int(parts.tm_min), width: 2, at: 14)
            text[16] = UInt8(ascii: ":")
            put(Int(parts.tm_sec), width: 2, at: 17)
            text[19] = UInt8(ascii: ".")
            put(milliseconds, width: 3, at: 20)
            text[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    private static func twoDigits(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
