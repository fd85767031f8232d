import InetCore
import NIOCore

/// What a `dns.query` event says of one exchange: the question (name, type, class), the rcode
/// and answer count, and where the answer came from. Read from the reply this server wrote (or,
/// without one, from the query), with every length checked: a query is peer bytes.
enum DNSEventNotes {
    /// `from`: `cache`, `zone`, `transfer` (AXFR) or `none` (nothing was sent).
    static func describe(query: UnsafeRawBufferPointer, reply: UnsafeRawBufferPointer?, from: StaticString, into body: inout EventBody) {
        let message = reply ?? query
        var question: (type: UInt16, qclass: UInt16)?
        body.text("qname") { writer in
            question = Self.question(in: message, name: &writer)
            return question != nil
        }
        if let question {
            if let name = DNSType(rawValue: question.type).staticName {
                body.plain("qtype", name)
            } else {
                body.string("qtype", DNSType(rawValue: question.type).description)
            }
            if question.qclass != 1 { body.int("qclass", Int(question.qclass)) }
        }
        if let reply, reply.count >= 12 {
            let flags = UInt16(reply[2]) << 8 | UInt16(reply[3])
            if let name = DNSRCodeName.staticName(flags & 0x0F) {
                body.plain("rcode", name)
            } else {
                body.string("rcode", DNSRCodeName.name(flags & 0x0F))
            }
            body.int("answers", Int(UInt16(reply[6]) << 8 | UInt16(reply[7])))
            if flags & 0x0200 != 0 { body.bool("truncated_reply", true) }
        } else {
            body.plain("rcode", "none")
        }
        body.plain("answered_from", from)
    }

    /// The first question of a message, its name written in presentation form
    /// (`www.example.`) into `name`; nil when the message has none or it is malformed.
    /// Compression pointers are not followed (a question this server writes never has one; a
    /// query's is shown as far as it goes).
    static func question(in message: UnsafeRawBufferPointer, name: inout EventTextWriter) -> (type: UInt16, qclass: UInt16)? {
        guard message.count >= 12, message[4] != 0 || message[5] != 0 else { return nil }
        var offset = 12
        var wire = 0
        while true {
            guard offset < message.count else { return nil }
            let label = Int(message[offset])
            if label == 0 { offset += 1; break }
            guard label < 64, offset + 1 + label <= message.count, wire + label < 255 else { return nil }
            wire += label + 1
            // The common label (letters, digits, `-`, `_`) needs no escape: copied at once.
            let bytes = UnsafeBufferPointer(rebasing: message.assumingMemoryBound(to: UInt8.self)[(offset + 1)..<(offset + 1 + label)])
            if bytes.allSatisfy(Self.isHostnameByte) {
                name.append(run: bytes)
                name.append(UInt8(ascii: "."))
                offset += 1 + label
                continue
            }
            for index in (offset + 1)..<(offset + 1 + label) {
                let byte = message[index]
                // Dots and odd bytes in a label are shown as RFC 1035 escapes.
                if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "\\") {
                    name.append(UInt8(ascii: "\\"))
                    name.append(byte)
                } else if byte <= 0x20 || byte >= 0x7F {
                    name.append(UInt8(ascii: "\\"))
                    name.append(UInt8(ascii: "0") + byte / 100)
                    name.append(UInt8(ascii: "0") + byte / 10 % 10)
                    name.append(UInt8(ascii: "0") + byte % 10)
                } else {
                    name.append(byte)
                }
            }
            name.append(UInt8(ascii: "."))
            offset += 1 + label
        }
        guard offset + 4 <= message.count else { return nil }
        if wire == 0 { name.append(UInt8(ascii: ".")) }
        let type = UInt16(message[offset]) << 8 | UInt16(message[offset + 1])
        let qclass = UInt16(message[offset + 2]) << 8 | UInt16(message[offset + 3])
        return (type, qclass)
    }

    @inline(__always)
    static func isHostnameByte(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}
