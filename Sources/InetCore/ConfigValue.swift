import Yams

/// A value read from the YAML configuration, with the line it came from.
///
/// The host converts the YAML tree into this small enum once, so the rest of the code never
/// depends on Yams and every error can name the key path and the line.
public indirect enum ConfigValue: Sendable, Equatable {
    case scalar(String, line: Int)
    case list([ConfigValue], line: Int)
    case map([(key: String, value: ConfigValue)], line: Int)
    case null(line: Int)

    public static func == (lhs: ConfigValue, rhs: ConfigValue) -> Bool {
        switch (lhs, rhs) {
        case let (.scalar(a, _), .scalar(b, _)): return a == b
        case let (.list(a, _), .list(b, _)): return a == b
        case let (.map(a, _), .map(b, _)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.null, .null): return true
        default: return false
        }
    }

    /// The 1-based line of the value in its file.
    public var line: Int {
        switch self {
        case .scalar(_, let line), .list(_, let line), .map(_, let line), .null(let line): return line
        }
    }

    /// Parses YAML text. An empty document is an empty map.
    public static func parse(yaml: String, file: String) throws(ConfigError) -> ConfigValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, key: nil, line: Self.line(of: error), message: "not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, key: nil, line: nil, message: "not valid YAML: \(error)")
        }
        guard let node else { return .map([], line: 1) }
        return convert(node)
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func convert(_ node: Node) -> ConfigValue {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                return .null(line: line)
            }
            return .scalar(scalar.string, line: line)
        case .sequence(let sequence):
            return .list(sequence.map(convert), line: line)
        case .mapping(let mapping):
            return .map(mapping.map { (key: $0.key.string ?? "\($0.key)", value: convert($0.value)) }, line: line)
        case .alias:
            return .null(line: line)
        }
    }
}

/// A configuration problem: names the file, the key path and the line where one is known.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var key: String?
    public var line: Int?
    public var message: String

    public init(file: String, key: String?, line: Int?, message: String) {
        self.file = file
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        var location = file
        if let line, line > 0 { location += ":\(line)" }
        if let key { return "\(location): \(key): \(message)" }
        return "\(location): \(message)"
    }
}

/// Reads typed values out of one map of the configuration, remembering which keys were used so
/// that unknown keys can be reported.
public struct ConfigReader: Sendable {
    public let file: String
    public let path: String
    private let entries: [(key: String, value: ConfigValue)]
    private let line: Int
    /// The map as read (equal to another reader's when the same keys have the same values,
    /// wherever they stand in the file): how a reload tells what changed.
    public let value: ConfigValue

    public init(_ value: ConfigValue, file: String, path: String) throws(ConfigError) {
        self.file = file
        self.path = path
        self.value = value
        switch value {
        case .map(let entries, let line):
            self.entries = entries
            self.line = line
        case .null(let line):
            self.entries = []
            self.line = line
        default:
            throw ConfigError(file: file, key: path.isEmpty ? nil : path, line: value.line, message: "expected a mapping of keys to values")
        }
        var seen = Set<String>()
        for entry in entries where !seen.insert(entry.key).inserted {
            throw ConfigError(file: file, key: keyPath(entry.key), line: entry.value.line, message: "key given twice")
        }
    }

    /// This map with `base`'s entries for the keys it does not give itself, `excluded` aside:
    /// how SMTPS, POP3S and FTPS run with the options of SMTP, POP3 and FTP unless their own
    /// map says otherwise.
    public func inheriting(from base: ConfigReader, except excluded: Set<String>) -> ConfigReader {
        let own = Set(entries.map(\.key))
        let merged = entries + base.entries.filter { !own.contains($0.key) && !excluded.contains($0.key) }
        return (try? ConfigReader(.map(merged, line: line), file: file, path: path)) ?? self
    }

    /// The keys present, in file order.
    public var keys: [String] { entries.map(\.key) }

    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func value(_ key: String) -> ConfigValue? {
        guard let value = entries.first(where: { $0.key == key })?.value else { return nil }
        if case .null = value { return nil }
        return value
    }

    /// Fails on the first key that is not in `allowed`.
    public func rejectUnknownKeys(allowed: Set<String>) throws(ConfigError) {
        for entry in entries where !allowed.contains(entry.key) {
            let known = allowed.sorted().joined(separator: ", ")
            throw ConfigError(file: file, key: keyPath(entry.key), line: entry.value.line, message: "unknown key (known keys here: \(known))")
        }
    }

    public func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, key: keyPath(key), line: value(key)?.line ?? line, message: message)
    }

    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .scalar(let text, _) = value else { throw error(key, "expected a single value") }
        return text
    }

    public func int(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let text = try string(key) else { return nil }
        guard let number = Int(text) else { throw error(key, "expected a whole number, got '\(text)'") }
        guard range.contains(number) else {
            throw error(key, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// A duration in seconds: `10`, `2.5`, or with a unit `500ms`, `10s`, `5m`.
    public func seconds(_ key: String, range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let text = try string(key) else { return nil }
        guard let value = Self.parseDuration(text) else {
            throw error(key, "expected a duration in seconds (e.g. 10, 2.5, 500ms, 5m), got '\(text)'")
        }
        guard range.contains(value) else {
            throw error(key, "\(text) is out of range \(range.lowerBound)...\(range.upperBound) seconds")
        }
        return value
    }

    static func parseDuration(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .configWhitespace)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number.isFinite else { return nil }
            return number * factor
        }
        guard let number = Double(trimmed), number.isFinite else { return nil }
        return number
    }

    public func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "expected true or false, got '\(text)'")
        }
    }

    public func stringList(_ key: String) throws(ConfigError) -> [String]? {
        guard let value = value(key) else { return nil }
        switch value {
        case .scalar(let text, _):
            return [text]
        case .list(let items, _):
            var result: [String] = []
            for item in items {
                guard case .scalar(let text, _) = item else { throw error(key, "expected a list of single values") }
                result.append(text)
            }
            return result
        default:
            throw error(key, "expected a list")
        }
    }

    public func map(_ key: String) throws(ConfigError) -> ConfigReader? {
        guard let value = value(key) else { return nil }
        return try ConfigReader(value, file: file, path: keyPath(key))
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Set where Element == Character {
    fileprivate static let configWhitespace: Set<Character> = [" ", "\t"]
}
