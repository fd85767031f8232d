/// Splits a syslog TCP stream into messages (RFC 6587), deciding per message: a message that
/// starts with a digit is octet-counted (`MSG-LEN SP MSG`, §3.4.1), any other is ended by LF or
/// NUL (non-transparent framing, §3.4.2; NUL is what Python's SysLogHandler sends). A message
/// longer than `maximumMessage` keeps its first `maximumMessage` bytes and is flagged; the
/// rest is skipped, so no more than that is ever held.
public struct SyslogFramer: Sendable {
    public struct Frame: Sendable, Equatable {
        /// The message (at most `maximumMessage` bytes).
        public var bytes: [UInt8]
        /// The message's length as sent (larger than `bytes` when truncated); for an
        /// incomplete one, the length its count announced.
        public var length: Int
        public var truncated: Bool { !incomplete && length > bytes.count }
        /// An octet-counted message the stream ended inside of.
        public var incomplete = false
        public var octetCounted: Bool
    }

    enum State: Sendable, Equatable {
        /// Between messages.
        case start
        /// Reading MSG-LEN: its value so far and its digits.
        case length(Int, digits: Int)
        /// Inside an octet-counted message: bytes still to come, and its length.
        case octets(remaining: Int, length: Int)
        /// Inside an LF-framed message: its length so far.
        case line(length: Int)
    }

    public let maximumMessage: Int
    var state = State.start
    var current: [UInt8] = []

    /// The longest MSG-LEN read (10 digits: 9,999,999,999 octets, far past any limit).
    static let maximumLengthDigits = 10

    public init(maximumMessage: Int) {
        self.maximumMessage = max(1, maximumMessage)
    }

    /// Feeds bytes from the stream; `emit` is called for each message completed by them.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, emit: (Frame) -> Void) {
        var i = 0
        let count = bytes.count
        while i < count {
            switch state {
            case .start:
                let byte = bytes[i]
                if byte == 0x0A || byte == 0x0D || byte == 0x00 || byte == 0x20 {
                    i += 1  // blank lines and stray separators between messages
                } else if byte >= 0x31 && byte <= 0x39 {
                    state = .length(Int(byte - 0x30), digits: 1)
                    i += 1
                } else {
                    state = .line(length: 0)
                }
            case .length(let value, let digits):
                let byte = bytes[i]
                if byte == 0x20 {
                    state = .octets(remaining: value, length: value)
                    current.removeAll(keepingCapacity: true)
                    i += 1
                } else if byte >= 0x30 && byte <= 0x39 && digits < Self.maximumLengthDigits {
                    state = .length(value * 10 + Int(byte - 0x30), digits: digits + 1)
                    i += 1
                } else {
                    // Not a count after all: the digits start an LF-framed message.
                    current.removeAll(keepingCapacity: true)
                    let text = Array(String(value).utf8)
                    current.append(contentsOf: text.prefix(maximumMessage))
                    state = .line(length: text.count)
                }
            case .octets(let remaining, let length):
                let take = min(remaining, count - i)
                let room = max(0, min(take, maximumMessage - current.count))
                if room > 0 { current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<i + room])) }
                i += take
                if take == remaining {
                    emit(Frame(bytes: current, length: length, octetCounted: true))
                    current.removeAll(keepingCapacity: true)
                    state = .start
                } else {
                    state = .octets(remaining: remaining - take, length: length)
                }
            case .line(let length):
                var j = i
                while j < count, bytes[j] != 0x0A, bytes[j] != 0x00 { j += 1 }
                let room = max(0, min(j - i, maximumMessage - current.count))
                if room > 0 { current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<i + room])) }
                let total = length + (j - i)
                if j < count {
                    var frame = Frame(bytes: current, length: total, octetCounted: false)
                    if frame.bytes.last == 0x0D, frame.length == frame.bytes.count {
                        frame.bytes.removeLast()
                        frame.length -= 1
                    }
                    emit(frame)
                    current.removeAll(keepingCapacity: true)
                    state = .start
                    i = j + 1
                } else {
                    state = .line(length: total)
                    i = j
                }
            }
        }
    }

    public mutating func feed(_ bytes: [UInt8], emit: (Frame) -> Void) {
        bytes.withUnsafeBytes { feed($0, emit: emit) }
    }

    /// The message the stream ended inside of, if any: an LF-framed one is complete at the end
    /// of the stream; an octet-counted one is flagged incomplete.
    public mutating func finish() -> Frame? {
        defer {
            state = .start
            current.removeAll()
        }
        switch state {
        case .start:
            return nil
        case .length(let value, _):
            return Frame(bytes: Array(String(value).utf8), length: String(value).utf8.count, octetCounted: false)
        case .octets(let remaining, let length):
            var frame = Frame(bytes: current, length: length, octetCounted: true)
            frame.incomplete = true
            return frame
        case .line(let length):
            var frame = Frame(bytes: current, length: length, octetCounted: false)
            if frame.bytes.last == 0x0D, frame.length == frame.bytes.count {
                frame.bytes.removeLast()
                frame.length -= 1
            }
            return frame.length == 0 ? nil : frame
        }
    }

    /// Bytes held for the message in progress (never more than `maximumMessage`).
    public var buffered: Int { current.count }
}
