package org.bloomtune.serve.openai;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import org.bloomtune.io.Json;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Reading requests and writing JSON answers, errors and server-sent events over the JDK's HTTP server. */
final class Exchanges {
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    private Exchanges() {}

    /**
     * The body as a JSON object: 413 past {@code limit} bytes (by Content-Length or as read), 400
     * for invalid UTF-8, malformed JSON or anything but an object.
     */
    static JsonObject jsonBody(HttpExchange ex, long limit) throws IOException {
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        if (declared != null) {
            long length;
            try {
                length = Long.parseLong(declared.trim());
            } catch (NumberFormatException e) {
                throw new ApiException(400, "invalid_request_error", null, null, "Content-Length '" + declared + "' is not a number");
            }
            if (length > limit) {
                discard(ex.getRequestBody());
                throw tooLarge(limit);
            }
        }
        byte[] bytes = readAtMost(ex.getRequestBody(), limit);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ApiException(400, "invalid_request_error", null, null, "the request body is not valid UTF-8");
        }
        if (text.isBlank()) throw new ApiException(400, "invalid_request_error", null, null, "the request body is empty: send a JSON object");
        JsonElement parsed;
        try {
            parsed = Json.parse(text, "the request body");
        } catch (IllegalArgumentException e) {
            throw new ApiException(400, "invalid_request_error", null, null, e.getMessage());
        }
        if (!parsed.isJsonObject()) {
            throw new ApiException(400, "invalid_request_error", null, null, "the request body must be a JSON object, found " + Json.kind(parsed));
        }
        return parsed.getAsJsonObject();
    }

    private static byte[] readAtMost(InputStream in, long limit) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        for (int n; (n = in.read(buffer)) > 0; ) {
            if (out.size() + (long) n > limit) {
                discard(in);
                throw tooLarge(limit);
            }
            out.write(buffer, 0, n);
        }
        return out.toByteArray();
    }

    /** Bytes of a refused body read and dropped before answering; beyond them the connection is just closed. */
    static final long DISCARD_LIMIT = 64L << 20;

    /**
     * Reads and drops the rest of a refused body (up to {@link #DISCARD_LIMIT}): closing a socket
     * with unread input resets the connection, and the client, still sending, would then lose the
     * 413 it is owed.
     */
    private static void discard(InputStream in) throws IOException {
        byte[] buffer = new byte[65536];
        long dropped = 0;
        for (int n; dropped < DISCARD_LIMIT && (n = in.read(buffer)) > 0; ) dropped += n;
    }

    private static ApiException tooLarge(long limit) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large", "the request body is over the server's limit of " + limit + " bytes");
    }

    static void sendJson(HttpExchange ex, int status, JsonElement body) throws IOException {
        send(ex, status, "application/json", GSON.toJson(body));
    }

    static void sendError(HttpExchange ex, ApiException e) throws IOException {
        if (e.status() == 429) ex.getResponseHeaders().set("Retry-After", "1");
        sendJson(ex, e.status(), e.json());
    }

    static void send(HttpExchange ex, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", contentType);
        ex.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    /** Server-sent events in OpenAI's style: {@code data: JSON} per event, {@code data: [DONE]} at the end. */
    static final class EventStream {
        private final OutputStream out;

        EventStream(HttpExchange ex) throws IOException {
            ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
            ex.getResponseHeaders().set("Cache-Control", "no-cache");
            ex.sendResponseHeaders(200, 0);
            out = ex.getResponseBody();
        }

        void send(JsonElement data) throws IOException { write("data: " + GSON.toJson(data) + "\n\n"); }

        /** An SSE comment: clients ignore it; writing it fails once the client has gone. */
        void comment() throws IOException { write(": keep-alive\n\n"); }

        void done() throws IOException {
            write("data: [DONE]\n\n");
            out.close();
        }

        private void write(String s) throws IOException {
            out.write(s.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }
}
