package org.bloomtune.serve;

/**
 * One request to a multi-task model: the task (a name in the bank) and its text — the text to
 * classify, or the prompt to continue.
 */
public record TaskRequest(String task, String text) {
    public TaskRequest {
        if (task == null || task.isEmpty()) throw new IllegalArgumentException("a request needs a task");
        if (text == null || text.isEmpty()) throw new IllegalArgumentException("a request for task '" + task + "' needs a text");
    }
}
