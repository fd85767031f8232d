/// The OpenAPI 3 document of the host's JSON API, served at `<status_path>/api/openapi.json`
/// (and checked against the running server with schemathesis in the interop tests).
enum OpenAPIDocument {
    static func json(statusPath: String) -> String {
        """
        {
          "openapi": "3.0.3",
          "info": {
            "title": "InetKit host API",
            "version": "1",
            "description": "What the host sees: its services, the connections open now, the events of every service (the same as the event stream at \(statusPath)/events), the mail it captured and the files uploaded to it. Over loopback no token is needed; over any other address, a Bearer token or ?token=."
          },
          "servers": [{"url": "\(statusPath)/api/v1"}],
          "security": [{}, {"bearer": []}, {"tokenQuery": []}],
          "paths": {
            "/messages": {
              "get": {
                "summary": "Captured mail, newest first, optionally searched",
                "operationId": "listMessages",
                "parameters": [
                  {"$ref": "#/components/parameters/to"}, {"$ref": "#/components/parameters/from"}, {"$ref": "#/components/parameters/subject"},
                  {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                ],
                "responses": {
                  "200": {"description": "The messages", "content": {"application/json": {"schema": {"type": "object", "required": ["messages"],
                    "properties": {"messages": {"type": "array", "items": {"$ref": "#/components/schemas/MessageSummary"}}}}}},
                    "links": {
                      "message": {"operationId": "getMessage", "parameters": {"id": "$response.body#/messages/0/id"}},
                      "raw": {"operationId": "rawMessage", "parameters": {"id": "$response.body#/messages/0/id"}},
                      "html": {"operationId": "messageHTML", "parameters": {"id": "$response.body#/messages/0/id"}}
                    }},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/messages/latest": {
              "get": {
                "summary": "The newest matching message; with wait, waits up to that many seconds for one to arrive",
                "operationId": "latestMessage",
                "parameters": [
                  {"$ref": "#/components/parameters/to"}, {"$ref": "#/components/parameters/from"}, {"$ref": "#/components/parameters/subject"},
                  {"name": "wait", "in": "query", "description": "Seconds, 0 to 60 (10 or 10s)", "schema": {"type": "string", "pattern": "^([0-5]?[0-9]([.][0-9]{1,3})?|60)s?$"}}
                ],
                "responses": {
                  "200": {"description": "The message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageSummary"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/messages/{id}": {
              "parameters": [{"$ref": "#/components/parameters/id"}],
              "get": {
                "summary": "One message: header fields, text and HTML parts, attachments",
                "operationId": "getMessage",
                "responses": {
                  "200": {"description": "The message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              },
              "delete": {
                "summary": "Deletes a message",
                "operationId": "deleteMessage",
                "responses": {
                  "204": {"description": "Deleted"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "405": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/messages/{id}/raw": {
              "parameters": [{"$ref": "#/components/parameters/id"}],
              "get": {
                "summary": "The message as received (an .eml download)",
                "operationId": "rawMessage",
                "responses": {
                  "200": {"description": "The message", "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/messages/{id}/html": {
              "parameters": [{"$ref": "#/components/parameters/id"}],
              "get": {
                "summary": "The HTML part alone, under a policy that lets it run no script and load nothing (what the dashboard frames)",
                "operationId": "messageHTML",
                "responses": {
                  "200": {"description": "The HTML part", "content": {"text/html": {"schema": {"type": "string"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/uploads": {
              "get": {
                "summary": "Files clients uploaded over FTP and TFTP, newest first, as the events the host keeps record them",
                "operationId": "listUploads",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {
                  "200": {"description": "The uploads", "content": {"application/json": {"schema": {"type": "object", "required": ["uploads"],
                    "properties": {"uploads": {"type": "array", "items": {"$ref": "#/components/schemas/Upload"}}, "enabled": {"type": "boolean"}}}}},
                    "links": {"download": {"operationId": "downloadUpload", "parameters": {"upload": "$response.body#/uploads/0/id"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/uploads/{upload}": {
              "parameters": [{"name": "upload", "in": "path", "required": true, "description": "The id of the upload's event", "schema": {"type": "integer", "minimum": 1}}],
              "get": {
                "summary": "The uploaded file, only as a download, and only while its SHA-256 is still the upload's",
                "operationId": "downloadUpload",
                "responses": {
                  "200": {"description": "The file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"description": "The file changed since it was uploaded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                }
              }
            },
            "/events": {
              "get": {
                "summary": "Events after an id, oldest first",
                "operationId": "listEvents",
                "parameters": [
                  {"name": "since", "in": "query", "description": "Only events with a larger id (default 0: the oldest the ring holds).",
                   "schema": {"type": "integer", "minimum": 0, "maximum": 999999999999999}},
                  {"name": "limit", "in": "query", "description": "At most this many events (default 100).",
                   "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                  {"name": "service", "in": "query", "description": "Only these services, comma-separated (e.g. dns,http).",
                   "schema": {"type": "string"}},
                  {"name": "kind", "in": "query", "description": "Only these kinds, comma-separated; a trailing * matches a prefix (dns.*).",
                   "schema": {"type": "string"}},
                  {"name": "conn", "in": "query", "description": "Only the events of this connection (the id of its connection.open): its transcript.",
                   "schema": {"type": "integer", "minimum": 0, "maximum": 999999999999999}}
                ],
                "responses": {
                  "200": {"description": "A page of events", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/services": {
              "get": {
                "summary": "Every service with its listeners, state, restarts and counters",
                "operationId": "listServices",
                "responses": {
                  "200": {"description": "The services", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Services"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/connections": {
              "get": {
                "summary": "The TCP connections open now, in every worker",
                "operationId": "listConnections",
                "responses": {
                  "200": {"description": "The open connections", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Connections"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "bearer": {"type": "http", "scheme": "bearer"},
              "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"}
            },
            "parameters": {
              "to": {"name": "to", "in": "query", "description": "Part of the mailbox, To or Cc (case-insensitive)", "schema": {"type": "string"}},
              "from": {"name": "from", "in": "query", "description": "Part of From", "schema": {"type": "string"}},
              "subject": {"name": "subject", "in": "query", "description": "Part of Subject", "schema": {"type": "string"}},
              "id": {"name": "id", "in": "path", "required": true, "description": "A message's id (its Maildir name, as the list gives it)", "schema": {"type": "string"}}
            },
            "responses": {
              "NotFound": {"description": "No such message (or no mail store)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "BadRequest": {"description": "A parameter out of range", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unauthorized": {"description": "Reached over a non-loopback address without the token", "content": {"text/html": {"schema": {"type": "string"}}}}
            },
            "schemas": {
              "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
              "MessageSummary": {
                "type": "object",
                "required": ["id", "mailbox", "from", "to", "subject", "size", "received"],
                "properties": {
                  "id": {"type": "string"}, "mailbox": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                  "cc": {"type": "string"}, "subject": {"type": "string"}, "date": {"type": "string"}, "message_id": {"type": "string"},
                  "size": {"type": "integer"}, "received": {"type": "string"}
                }
              },
              "Message": {
                "allOf": [{"$ref": "#/components/schemas/MessageSummary"}, {
                  "type": "object",
                  "required": ["headers", "text", "html", "attachments"],
                  "properties": {
                    "headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
                    "text": {"type": "string", "nullable": true},
                    "html": {"type": "string", "nullable": true},
                    "attachments": {"type": "array", "items": {"type": "object", "required": ["filename", "content_type", "size"],
                      "properties": {"filename": {"type": "string"}, "content_type": {"type": "string"}, "size": {"type": "integer"}}}}
                  }
                }]
              },
              "Upload": {
                "type": "object",
                "required": ["id", "time", "service", "peer", "file", "name", "bytes", "sha256", "available"],
                "properties": {
                  "id": {"type": "integer"}, "time": {"type": "string"}, "service": {"type": "string", "enum": ["ftp", "ftps", "tftp"]},
                  "peer": {"type": "string"}, "user": {"type": "string"}, "file": {"type": "string", "description": "As the client named it"},
                  "name": {"type": "string", "description": "The download's file name"}, "bytes": {"type": "integer"},
                  "sha256": {"type": "string", "nullable": true}, "available": {"type": "boolean", "description": "Whether the file is still there as uploaded"}
                }
              },
              "Event": {
                "type": "object",
                "required": ["id", "time", "service", "kind"],
                "properties": {
                  "id": {"type": "integer", "minimum": 1},
                  "time": {"type": "string", "description": "ISO 8601, UTC, milliseconds"},
                  "service": {"type": "string"},
                  "kind": {"type": "string", "description": "connection.open, connection.close, http.request, dns.query, smtp.message, line, …"},
                  "conn": {"type": "integer", "description": "The id of the connection's connection.open event"},
                  "transport": {"type": "string", "enum": ["tcp", "udp"]},
                  "peer": {"type": "string"},
                  "truncated": {"type": "boolean"}
                },
                "additionalProperties": true
              },
              "EventPage": {
                "type": "object",
                "required": ["events", "next", "lost"],
                "properties": {
                  "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                  "next": {"type": "integer", "description": "Where the next page starts: pass next - 1 as since"},
                  "last_id": {"type": "integer"},
                  "lost": {"type": "integer", "description": "Events after since no longer in the ring"},
                  "enabled": {"type": "boolean"}
                }
              },
              "Services": {
                "type": "object",
                "required": ["uptime_seconds", "services"],
                "properties": {
                  "uptime_seconds": {"type": "integer"},
                  "services": {"type": "array", "items": {
                    "type": "object",
                    "required": ["name", "running", "state", "restarts", "listeners", "counters"],
                    "properties": {
                      "name": {"type": "string"},
                      "running": {"type": "boolean"},
                      "state": {"type": "string"},
                      "restarts": {"type": "integer"},
                      "listeners": {"type": "array", "items": {"type": "object", "required": ["transport", "address", "port"],
                        "properties": {"transport": {"type": "string"}, "address": {"type": "string"}, "port": {"type": "integer"}}}},
                      "counters": {"type": "array", "items": {"type": "object", "additionalProperties": true}}
                    }
                  }}
                }
              },
              "Connections": {
                "type": "object",
                "required": ["connections"],
                "properties": {
                  "connections": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "service", "transport", "peer", "port", "pid", "started"],
                    "properties": {
                      "id": {"type": "integer"}, "service": {"type": "string"}, "transport": {"type": "string"},
                      "peer": {"type": "string"}, "port": {"type": "integer"}, "pid": {"type": "integer"}, "started": {"type": "string"}
                    }
                  }}
                }
              }
            }
          }
        }

        """
    }
}
