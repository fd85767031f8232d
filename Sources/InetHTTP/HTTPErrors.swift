import Hummingbird
import HTTPTypes
import NIOCore

/// Small HTML error pages, so a browser user sees what went wrong.
enum HTTPErrors {
    static func page(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) -> Response {
        let title = "\(status.code) \(status.reasonPhrase)"
        let html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(title)</title></head>"
            + "<body><h1>\(title)</h1><p>\(HTML.escape(detail))</p><hr><p>InetKit</p></body></html>\n"
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        fields[.contentLength] = String(html.utf8.count)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// Text for an HTML page (the status pages, listings, the session report).
public enum HTML {
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
