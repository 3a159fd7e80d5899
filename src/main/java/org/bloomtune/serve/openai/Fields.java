package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/** Reading a request's JSON fields, each failure a 400 naming the field. */
final class Fields {
    private Fields() {}

    static JsonElement get(JsonObject o, String name) {
        JsonElement v = o.get(name);
        return v == null || v.isJsonNull() ? null : v;
    }

    static String requiredString(JsonObject o, String name) {
        String s = optionalString(o, name);
        if (s == null) throw ApiException.invalid(name, "'" + name + "' is required");
        return s;
    }

    static String optionalString(JsonObject o, String name) {
        JsonElement v = get(o, name);
        if (v == null) return null;
        if (!(v instanceof JsonPrimitive p) || !p.isString()) throw ApiException.invalid(name, "'" + name + "' must be a string");
        return p.getAsString();
    }

    static boolean bool(JsonObject o, String name, boolean fallback) {
        JsonElement v = get(o, name);
        if (v == null) return fallback;
        if (!(v instanceof JsonPrimitive p) || !p.isBoolean()) throw ApiException.invalid(name, "'" + name + "' must be true or false");
        return p.getAsBoolean();
    }

    static double number(JsonObject o, String name, double fallback, double min, double max) {
        JsonElement v = get(o, name);
        if (v == null) return fallback;
        if (!(v instanceof JsonPrimitive p) || !p.isNumber()) throw ApiException.invalid(name, "'" + name + "' must be a number");
        double d = p.getAsDouble();
        if (!(d >= min && d <= max)) throw ApiException.invalid(name, "'" + name + "' must lie in [" + trim(min) + ", " + trim(max) + "], got " + p.getAsString());
        return d;
    }

    static long integer(JsonObject o, String name, long fallback, long min, long max) {
        JsonElement v = get(o, name);
        if (v == null) return fallback;
        return integer(v, name, min, max);
    }

    static long integer(JsonElement v, String name, long min, long max) {
        if (!(v instanceof JsonPrimitive p) || !p.isNumber()) throw ApiException.invalid(name, "'" + name + "' must be an integer");
        BigDecimal d = p.getAsBigDecimal();
        if (d.stripTrailingZeros().scale() > 0) throw ApiException.invalid(name, "'" + name + "' must be an integer, got " + p.getAsString());
        if (d.compareTo(BigDecimal.valueOf(min)) < 0 || d.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw ApiException.invalid(name, "'" + name + "' must lie in [" + min + ", " + max + "], got " + p.getAsString());
        }
        return d.longValueExact();
    }

    /** A string or an array of strings (OpenAI's {@code stop}, {@code input}). */
    static List<String> strings(JsonObject o, String name, int maxCount) {
        JsonElement v = get(o, name);
        if (v == null) return List.of();
        List<String> out = new ArrayList<>();
        if (v instanceof JsonPrimitive p && p.isString()) {
            out.add(p.getAsString());
        } else if (v instanceof JsonArray a) {
            for (JsonElement e : a) {
                if (!(e instanceof JsonPrimitive p) || !p.isString()) throw ApiException.invalid(name, "'" + name + "' must be a string or an array of strings");
                out.add(p.getAsString());
            }
        } else {
            throw ApiException.invalid(name, "'" + name + "' must be a string or an array of strings");
        }
        if (out.size() > maxCount) throw ApiException.invalid(name, "'" + name + "' holds " + out.size() + " entries, at most " + maxCount + " are allowed");
        return out;
    }

    private static String trim(double d) { return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d); }
}
