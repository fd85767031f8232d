import InetLine

/// What the mail clients throw: the connection's or the server's refusal, in words.
public typealias MailClientError = LineClientError
