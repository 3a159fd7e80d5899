package org.bloomtune.serve.openai;

import com.google.gson.JsonObject;

/**
 * A request the server answers with an error: the HTTP status and OpenAI's error object
 * {@code {"error": {"message", "type", "param", "code"}}}, so clients raise their usual exceptions.
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;
    private final String code;

    public ApiException(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: a field is missing or wrong; {@code param} names it. */
    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message);
    }

    static ApiException unsupported(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, "unsupported_parameter", message);
    }

    public int status() { return status; }

    JsonObject json() {
        JsonObject e = new JsonObject();
        e.addProperty("message", getMessage());
        e.addProperty("type", type);
        if (param == null) e.add("param", com.google.gson.JsonNull.INSTANCE);
        else e.addProperty("param", param);
        if (code == null) e.add("code", com.google.gson.JsonNull.INSTANCE);
        else e.addProperty("code", code);
        JsonObject o = new JsonObject();
        o.add("error", e);
        return o;
    }
}
