#if DEBUG
@testable import InetSyslog

enum SyslogTargets {
    /// A syslog TCP stream (or one datagram): framed whole and in chunks the input picks, the
    /// frames are the same and none holds more than the limit; every message parses to fields
    /// within the message, and its stored record is one line of valid UTF-8 JSON text with no
    /// raw control characters.
    static let message = FuzzTarget(name: "syslog-message", summary: "a syslog stream: RFC 6587 framing, RFC 5424/3164 parsing, the JSON record", maximumLength: 16_384) { bytes in
        var input = FuzzInput(bytes)
        let maximum = 480 + Int(input.byte()) * 4
        let chunk = 1 + Int(input.byte())
        let stream = input.rest()

        var whole: [SyslogFramer.Frame] = []
        var framer = SyslogFramer(maximumMessage: maximum)
        framer.feed(stream) { whole.append($0) }
        guard framer.buffered <= maximum else { return "the framer holds \(framer.buffered) bytes" }
        if let last = framer.finish() { whole.append(last) }

        var pieces: [SyslogFramer.Frame] = []
        var split = SyslogFramer(maximumMessage: maximum)
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + chunk)
            split.feed(Array(stream[offset..<end])) { pieces.append($0) }
            offset = end
        }
        if let last = split.finish() { pieces.append(last) }
        guard whole == pieces else { return "framing depends on how the stream is cut" }

        for frame in whole + [SyslogFramer.Frame(bytes: stream, length: stream.count, octetCounted: false)] {
            guard frame.bytes.count <= max(maximum, stream.count) else { return "a frame of \(frame.bytes.count) bytes" }
            let message = SyslogMessage.parse(frame.bytes[...])
            guard (0...191).contains(message.priority) else { return "priority \(message.priority)" }
            guard message.message.startIndex >= frame.bytes.startIndex, message.message.endIndex <= frame.bytes.endIndex else { return "message outside the frame" }
            var line: [UInt8] = []
            SyslogRecord.encode(message, length: frame.length, truncated: frame.truncated, incomplete: frame.incomplete,
                                receipt: .init(seconds: 1_764_781_200, nanoseconds: 0, peer: "[::1]:514", transport: "tcp"), into: &line)
            guard line.last == 0x0A, line.dropLast().allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else { return "a control character or line break in the record" }
            guard String(validating: line, as: UTF8.self) != nil else { return "the record is not UTF-8" }
            guard line.first == 0x7B, line[line.count - 2] == 0x7D else { return "the record is not an object" }
        }
        return nil
    }
}
#endif
