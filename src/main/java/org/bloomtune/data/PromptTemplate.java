package org.bloomtune.data;

/**
 * Renders a record as prompt and response. The seed's template is
 * {@code "Human: {instruction}\n{input}\n\nAssistant: {output}"}; when {@code input} is empty its line
 * goes away with its newline, so no stray blank line appears. Everything before {@code {output}} is
 * the prompt.
 */
public record PromptTemplate(String template) {
    public static final PromptTemplate SEED = new PromptTemplate("Human: {instruction}\n{input}\n\nAssistant: {output}");

    public PromptTemplate {
        if (!template.contains("{instruction}") || !template.endsWith("{output}")) {
            throw new IllegalArgumentException("template must contain {instruction} and end with {output}: " + template);
        }
    }

    public String prompt(AlpacaRecord r) {
        String head = template.substring(0, template.length() - "{output}".length());
        if (r.input().isEmpty()) head = head.replace("{input}\n", "").replace("{input}", "");
        return head.replace("{instruction}", r.instruction()).replace("{input}", r.input());
    }

    /** The prompt of a bare instruction (generation time). */
    public String prompt(String instruction) {
        return prompt(new AlpacaRecord(instruction, "", "", "prompt"));
    }
}
