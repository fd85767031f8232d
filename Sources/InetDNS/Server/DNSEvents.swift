import InetCore
import NIOCore

/// What a `dns.query` event says of one exchange: the question (name, type, class), the rcode
/// and answer count, and where the answer came from. Read from the reply this server wrote (or,
/// without one, from the query), with every length checked: a query is peer bytes.
enum DNSEventNotes {
    /// `from`: `cache`, `zone`, `transfer` (AXFR) or `none` (nothing was sent).
    static func describe(query: UnsafeRawBufferPointer, reply: UnsafeRawBufferPointer?, from: String, into body: inout EventBody) {
        let message = reply ?? query
        // The longest name in presentation form: 255 bytes on the wire, each at most `\DDD`.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { name in
            if let question = question(in: message, name: name) {
                body.ascii("qname", UnsafeBufferPointer(rebasing: name[0..<question.length]))
                body.string("qtype", DNSType(rawValue: question.type).description)
                if question.qclass != 1 { body.int("qclass", Int(question.qclass)) }
            } else {
                body.ascii("qname", UnsafeBufferPointer(rebasing: name[0..<0]))
            }
        }
        if let reply, reply.count >= 12 {
            let flags = UInt16(reply[2]) << 8 | UInt16(reply[3])
            body.string("rcode", DNSRCodeName.name(flags & 0x0F))
            body.int("answers", Int(UInt16(reply[6]) << 8 | UInt16(reply[7])))
            if flags & 0x0200 != 0 { body.bool("truncated_reply", true) }
        } else {
            body.string("rcode", "none")
        }
        body.string("answered_from", from)
    }

    /// The first question of a message in presentation form (`www.example.`), written into
    /// `name` (at least 1024 bytes), or nil when the message has none or it is malformed.
    /// Compression pointers are not followed (a question this server writes never has one; a
    /// query's is shown as far as it goes).
    static func question(in message: UnsafeRawBufferPointer, name: UnsafeMutableBufferPointer<UInt8>) -> (length: Int, type: UInt16, qclass: UInt16)? {
        guard message.count >= 12, message[4] != 0 || message[5] != 0, name.count >= 1024 else { return nil }
        var offset = 12
        var length = 0
        var wire = 0
        while true {
            guard offset < message.count else { return nil }
            let label = Int(message[offset])
            if label == 0 { offset += 1; break }
            guard label < 64, offset + 1 + label <= message.count, wire + label < 255 else { return nil }
            wire += label + 1
            for byte in message[(offset + 1)..<(offset + 1 + label)] {
                // Dots and odd bytes in a label are shown as RFC 1035 escapes (at most 4 bytes
                // each: 254 wire bytes stay within 1016).
                if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "\\") {
                    name[length] = UInt8(ascii: "\\")
                    name[length + 1] = byte
                    length += 2
                } else if byte <= 0x20 || byte >= 0x7F {
                    name[length] = UInt8(ascii: "\\")
                    name[length + 1] = UInt8(ascii: "0") + byte / 100
                    name[length + 2] = UInt8(ascii: "0") + byte / 10 % 10
                    name[length + 3] = UInt8(ascii: "0") + byte % 10
                    length += 4
                } else {
                    name[length] = byte
                    length += 1
                }
            }
            name[length] = UInt8(ascii: ".")
            length += 1
        }
        guard offset + 4 <= message.count else { return nil }
        let type = UInt16(message[offset]) << 8 | UInt16(message[offset + 1])
        let qclass = UInt16(message[offset + 2]) << 8 | UInt16(message[offset + 3])
        if length == 0 {
            name[0] = UInt8(ascii: ".")
            length = 1
        }
        return (length, type, qclass)
    }
}
