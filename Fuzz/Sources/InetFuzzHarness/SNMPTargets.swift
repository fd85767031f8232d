#if DEBUG
import InetCore
import NIOCore
@testable import InetSNMP

enum SNMPTargets {
    /// BER and the message structure: what decodes, encodes, and decodes to the same message;
    /// the fast reader and writer (`SNMPWire`) agree with SwiftASN1's parser and serializer.
    static let message = FuzzTarget(name: "snmp-message", summary: "SNMP v1/v2c messages in BER: decode, encode, decode again; SNMPWire against SwiftASN1", maximumLength: 65_507) { bytes in
        let reference = try? SNMPMessage.decodeWithSwiftASN1(bytes)
        if let fast = SNMPWire.decode(bytes), fast != reference { return "SNMPWire decodes a message SwiftASN1 does not, or another one" }
        guard let message = try? SNMPMessage.decode(bytes) else { return nil }
        guard message == reference else { return "decode differs from SwiftASN1's" }
        let encoded = message.encode()
        guard encoded == message.encodeWithSwiftASN1() else { return "SNMPWire's DER differs from SwiftASN1's" }
        guard let again = try? SNMPMessage.decode(encoded) else { return "an encoded message does not decode" }
        guard again == message else { return "decode → encode → decode changed the message" }
        return nil
    }

    static let agent = SNMPAgent(
        communities: [
            Community(name: Array("public".utf8), access: .read, from: []),
            Community(name: Array("private".utf8), access: .write, from: [CIDR("127.0.0.0/8")!]),
        ],
        system: SystemStrings(defaults: .init(contact: "fuzz", name: "fuzz", location: "fuzz"), file: nil),
        host: HostDirectory(), maximumMessageSize: 1472)

    /// The agent's answer to a datagram from 127.0.0.1 (communities `public` and `private`).
    static let reply = FuzzTarget(name: "snmp-reply", summary: "the SNMP agent's answer to one datagram (GET, GETNEXT, GETBULK, SET)", maximumLength: 4096) { bytes in
        let source = try! SocketAddress(ipAddress: "127.0.0.1", port: 1161)
        var note = SNMPExchangeNote()
        guard let answer = agent.respond(to: bytes, from: source, note: &note) else { return nil }
        guard note.communityAccepted == true, note.pdu != nil, note.oids.count <= SNMPExchangeNote.maximumOIDs else { return "an answered request without its note" }
        guard answer.count <= agent.maximumMessageSize else { return "a response over max_message_size" }
        guard let response = try? SNMPMessage.decode(answer) else { return "a response does not decode" }
        guard response.pdu.type == .response else { return "an answer that is not a Response-PDU" }
        if let request = try? SNMPMessage.decode(bytes), request.pdu.requestID != response.pdu.requestID { return "a response with another request-id" }
        return nil
    }
}
#endif
