/// TFTP's five packets (RFC 1350 §5) and the option acknowledgment (RFC 2347), shared by the
/// server, the client and the fuzz target.
public enum TFTPPacket: Equatable, Sendable {
    case readRequest(file: [UInt8], mode: String, options: [TFTPOption])
    case writeRequest(file: [UInt8], mode: String, options: [TFTPOption])
    case data(block: UInt16, payload: [UInt8])
    case ack(block: UInt16)
    case error(TFTPErrorCode, message: String)
    case optionAck([TFTPOption])

    public enum DecodeError: Error, Equatable {
        case short
        case unknownOpcode(UInt16)
        /// A request or OACK whose strings are not NUL-terminated, or too many of them.
        case malformed(String)
    }

    /// The most options a request may carry (each a name and a value).
    public static let maximumOptions = 16

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> TFTPPacket {
        guard bytes.count >= 4 else { throw .short }
        let opcode = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        func word(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        switch opcode {
        case 1, 2:
            let strings = try Self.strings(bytes[2...])
            guard strings.count >= 2 else { throw .malformed("a request needs a file name and a mode") }
            guard strings.count % 2 == 0, strings.count / 2 - 1 <= maximumOptions else { throw .malformed("options come in name/value pairs, at most \(maximumOptions)") }
            guard let mode = Self.text(strings[1]).map(Self.asciiLowercased) else { throw .malformed("the mode is not text") }
            var options: [TFTPOption] = []
            var index = 2
            while index + 1 < strings.count {
                // An option that is not text is no option this side knows: ignored (RFC 2347).
                if let name = Self.text(strings[index]), let value = Self.text(strings[index + 1]) {
                    options.append(TFTPOption(name: Self.asciiLowercased(name), value: value))
                }
                index += 2
            }
            return opcode == 1 ? .readRequest(file: strings[0], mode: mode, options: options) : .writeRequest(file: strings[0], mode: mode, options: options)
        case 3:
            return .data(block: word(2), payload: Array(bytes[4...]))
        case 4:
            return .ack(block: word(2))
        case 5:
            let text = bytes[4...].prefix { $0 != 0 }
            return .error(TFTPErrorCode(rawValue: word(2)) ?? .undefined, message: String(decoding: text, as: UTF8.self))
        case 6:
            let strings = try Self.strings(bytes[2...])
            guard strings.count % 2 == 0, strings.count / 2 <= maximumOptions else { throw .malformed("an OACK holds name/value pairs") }
            let options: [TFTPOption] = stride(from: 0, to: strings.count, by: 2).compactMap { index in
                guard let name = Self.text(strings[index]), let value = Self.text(strings[index + 1]) else { return nil }
                return TFTPOption(name: Self.asciiLowercased(name), value: value)
            }
            guard !options.isEmpty else { throw .malformed("an OACK names no option") }
            return .optionAck(options)
        default:
            throw .unknownOpcode(opcode)
        }
    }

    /// The bytes as a string when they are valid UTF-8 (so encoding gives the same bytes back).
    static func text(_ bytes: [UInt8]) -> String? {
        let string = String(decoding: bytes, as: UTF8.self)
        return Array(string.utf8) == bytes ? string : nil
    }

    /// Lower case for ASCII letters only (Unicode lowercasing can change a string's length).
    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// NUL-terminated strings; each at most 512 bytes (a name or an option, never a payload).
    static func strings(_ bytes: ArraySlice<UInt8>) throws(DecodeError) -> [[UInt8]] {
        guard bytes.last == 0 else { throw .malformed("a string is not NUL-terminated") }
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in bytes {
            if byte == 0 {
                result.append(current)
                current = []
                guard result.count <= 2 + 2 * maximumOptions else { throw .malformed("too many strings") }
            } else {
                current.append(byte)
                guard current.count <= 512 else { throw .malformed("a string over 512 bytes") }
            }
        }
        return result
    }

    public func encode() -> [UInt8] {
        func word(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
        func options(_ list: [TFTPOption]) -> [UInt8] { list.flatMap { Array($0.name.utf8) + [0] + Array($0.value.utf8) + [0] } }
        switch self {
        case .readRequest(let file, let mode, let list): return word(1) + file + [0] + Array(mode.utf8) + [0] + options(list)
        case .writeRequest(let file, let mode, let list): return word(2) + file + [0] + Array(mode.utf8) + [0] + options(list)
        case .data(let block, let payload): return word(3) + word(block) + payload
        case .ack(let block): return word(4) + word(block)
        case .error(let code, let message): return word(5) + word(code.rawValue) + Array(message.utf8.filter { $0 != 0 }.prefix(200)) + [0]
        case .optionAck(let list): return word(6) + options(list)
        }
    }
}

public struct TFTPOption: Equatable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// RFC 1350's error codes, and RFC 2347's 8.
public enum TFTPErrorCode: UInt16, Sendable {
    case undefined = 0, fileNotFound, accessViolation, diskFull, illegalOperation, unknownTransferID, fileExists, noSuchUser, optionRefused
}

/// What the client asked for, and what the server grants (RFC 2348, 2349, 7440).
public struct TFTPOptions: Equatable, Sendable {
    public var blockSize = 512
    public var timeout: Double = 1
    public var transferSize: Int?
    public var windowSize = 1

    public init() {}

    /// The options the server accepts from a request, within its limits, and the OACK entries
    /// for them (nil: no OACK, the transfer starts as in RFC 1350). `fileSize` answers tsize on
    /// a read; on a write the client's tsize is kept as announced.
    public static func negotiate(_ requested: [TFTPOption], write: Bool, fileSize: Int?, maximumBlockSize: Int, maximumWindowSize: Int) -> (TFTPOptions, [TFTPOption]?) {
        var granted = TFTPOptions()
        var acknowledged: [TFTPOption] = []
        var seen = Set<String>()
        for option in requested where seen.insert(option.name).inserted {
            guard option.value.utf8.count <= 12, let number = Int(option.value), number >= 0 else { continue }
            switch option.name {
            case "blksize" where number >= 8:
                granted.blockSize = min(number, 65_464, maximumBlockSize)
                acknowledged.append(TFTPOption(name: "blksize", value: "\(granted.blockSize)"))
            case "timeout" where (1...255).contains(number):
                granted.timeout = Double(number)
                acknowledged.append(TFTPOption(name: "timeout", value: "\(number)"))
            case "tsize":
                if write {
                    granted.transferSize = number
                    acknowledged.append(TFTPOption(name: "tsize", value: "\(number)"))
                } else if number == 0, let fileSize {
                    granted.transferSize = fileSize
                    acknowledged.append(TFTPOption(name: "tsize", value: "\(fileSize)"))
                }
            case "windowsize" where (1...65_535).contains(number):
                granted.windowSize = min(number, maximumWindowSize)
                acknowledged.append(TFTPOption(name: "windowsize", value: "\(granted.windowSize)"))
            default:
                continue
            }
        }
        return (granted, acknowledged.isEmpty ? nil : acknowledged)
    }
}
