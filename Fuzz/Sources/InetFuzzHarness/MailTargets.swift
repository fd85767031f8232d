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

    /// A stored message as the mail API shows it: header fields, MIME parts, encodings. What
    /// comes out is bounded by what went in, and the view of a message is stable (the same
    /// bytes always give the same view).
    static let message = FuzzTarget(name: "mail-message", summary: "a captured message as the mail API views it (header fields, RFC 2047 words, MIME parts, base64, quoted-printable)", maximumLength: 65_536) { bytes in
        let view = MailMessageView(bytes: bytes)
        guard view.headers.count <= MailMessageView.maximumFields else { return "more header fields than the bound" }
        guard view.attachments.count <= MailMessageView.maximumParts else { return "more attachments than the bound" }
        // Decoding never grows a part past its encoded size (base64 and QP only shrink); text
        // as Swift strings can be at most 3 bytes per input byte (U+FFFD for each invalid one).
        let limit = 3 * bytes.count + 16
        if let text = view.text, text.utf8.count > limit { return "a text part larger than the message" }
        if let html = view.html, html.utf8.count > limit { return "an HTML part larger than the message" }
        for attachment in view.attachments where attachment.size > bytes.count { return "an attachment larger than the message" }
        guard MailMessageView(bytes: bytes) == view else { return "two views of the same bytes differ" }
        _ = MailMessageView.headerFields(bytes[...])
        return nil
    }
}
#endif
