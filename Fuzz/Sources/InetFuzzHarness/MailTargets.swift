#if DEBUG
@testable import InetMail

enum MailTargets {
    /// Mail addresses and the MAIL/RCPT argument: what parses prints back to the same address,
    /// and a storable address holds no path or control characters.
    static let address = FuzzTarget(name: "mail-address", summary: "mail addresses and MAIL FROM/RCPT TO arguments with ESMTP parameters", maximumLength: 1024) { bytes in
        var input = FuzzInput(bytes)
        let utf8 = input.bool()
        let text = String(decoding: input.rest(), as: UTF8.self)
        _ = SMTPPathArgument.parse(Substring(text))
        guard let address = MailAddress.parse(Substring(text), utf8: utf8) else { return nil }
        guard let again = MailAddress.parse(Substring(address.description), utf8: true) else { return "\(address) does not parse again" }
        guard again == address else { return "\(text) → \(address) → \(again)" }
        if address.isStorable, address.localPart.contains("/") || address.localPart.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            return "a storable address with a path or control character"
        }
        return nil
    }
}
#endif
