import LeadCore
import Testing

/// `looksLikeEmail` has an ASCII fast path beside the general one; both must apply the same rules.
@Suite struct ContactNormalizerTests {
    /// Every string of up to 7 characters over a small alphabet that exercises each rule (one `@`, dotted
    /// domain, no whitespace, no leading hyphen), checked on the ASCII path and, with "é" in front of it (so a
    /// non-empty, non-ASCII local part), on the general path. Prefixing changes nothing the rules look at when
    /// the string does not start with "@".
    @Test func asciiFastPathAgreesWithTheGeneralPath() {
        let alphabet: [Character] = ["a", "@", ".", "-", " ", "\t"]
        var strings = [""]
        var checked = 0
        for _ in 1...7 {
            strings = strings.flatMap { prefix in alphabet.map { prefix + String($0) } }
            for text in strings where !text.hasPrefix("@") {
                let ascii = ContactNormalizer.looksLikeEmail(text)
                let general = ContactNormalizer.looksLikeEmail("é" + text)
                #expect(ascii == general, "\(text.debugDescription)")
                checked += 1
            }
        }
        #expect(checked > 250_000)
        #expect(ContactNormalizer.looksLikeEmail("a@a.aa"))
        #expect(!ContactNormalizer.looksLikeEmail("a@-a.aa"))
    }
}
