package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.bloomtune.serve.ServedBank;

/** {@code GET /v1/models}: the bare model and every task of the bank, with what each task does. */
final class ModelsEndpoint {
    private ModelsEndpoint() {}

    static JsonObject list(ServedBank bank) {
        JsonArray data = new JsonArray();
        for (ServedBank.TaskInfo t : bank.list()) data.add(model(t));
        JsonObject o = new JsonObject();
        o.addProperty("object", "list");
        o.add("data", data);
        return o;
    }

    static JsonObject model(ServedBank.TaskInfo t) {
        JsonObject m = new JsonObject();
        m.addProperty("id", t.name());
        m.addProperty("object", "model");
        m.addProperty("created", t.added().getEpochSecond());
        m.addProperty("owned_by", "bloomtune");
        m.addProperty("task", t.classifies() ? "classify" : "generate");
        m.addProperty("num_virtual_tokens", t.virtualTokens());
        return m;
    }
}
