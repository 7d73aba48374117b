extension StringProtocol {
    /// Without leading and trailing whitespace and newlines; cheaper than Foundation's
    /// `trimmingCharacters(in:)`, which bridges through NSString on Linux.
    package var trimmed: String {
        // Nothing to trim at ASCII ends (nearly always): decided without Unicode property lookups.
        if let head = first?.asciiValue, let tail = last?.asciiValue {
            func isSpace(_ byte: UInt8) -> Bool { (0x09...0x0D).contains(byte) || byte == 0x20 }
            if !isSpace(head), !isSpace(tail) { return String(self) }
        }
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}
