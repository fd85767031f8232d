/// How the site answers a `Range` header (RFC 9110 14.1.2, 14.2) for a file of a known size.
///
/// Pure and total: any header text and any size give a decision, so it is fuzzed on its own.
/// Only a single range is served (as a 206); several ranges, another unit or a malformed
/// specifier are ignored and the whole file is sent, which RFC 9110 14.2 allows.
enum ByteRange: Equatable, Sendable {
    /// Send the whole file (200).
    case ignore
    /// 416 with `Content-Range: bytes */size`.
    case unsatisfiable
    /// 206 for these bytes, already clamped to the file.
    case satisfiable(ClosedRange<Int>)

    /// The longest run of digits read as a number; longer ones saturate (a position past any
    /// file, a suffix longer than any file), never trap.
    static let maximumDigits = 18

    static func decide(_ header: String, size: Int) -> ByteRange {
        guard size >= 0 else { return .ignore }
        var text = Substring(header)
        text = text.drop { $0 == " " || $0 == "\t" }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        guard let equals = text.firstIndex(of: "="), text[..<equals].lowercased() == "bytes" else { return .ignore }
        // range-set = 1#range-spec; empty list elements are allowed (RFC 9110 5.6.1).
        let specs = text[text.index(after: equals)...]
            .split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingOWS }
            .filter { !$0.isEmpty }
        guard specs.count == 1, let spec = specs.first else { return .ignore }
        guard let dash = spec.firstIndex(of: "-") else { return .ignore }
        let firstText = spec[..<dash]
        let lastText = spec[spec.index(after: dash)...]
        if firstText.isEmpty {
            // suffix-range = "-" suffix-length
            guard let suffix = number(lastText) else { return .ignore }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .satisfiable(max(0, size - suffix)...(size - 1))
        }
        guard let first = number(firstText) else { return .ignore }
        var last = Int.max
        if !lastText.isEmpty {
            guard let value = number(lastText) else { return .ignore }
            guard value >= first else { return .ignore }
            last = value
        }
        guard first < size else { return .unsatisfiable }
        return .satisfiable(first...min(last, size - 1))
    }

    /// 1*DIGIT (ASCII only), saturating at `Int.max`.
    static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let digits = text.drop { $0 == "0" }
        guard digits.utf8.count <= maximumDigits else { return Int.max }
        return digits.isEmpty ? 0 : Int(digits)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's OWS).
    fileprivate var trimmingOWS: Substring {
        var text = self.drop { $0 == " " || $0 == "\t" }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
